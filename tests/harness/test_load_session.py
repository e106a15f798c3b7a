"""A load profile against the real reference cluster, with a hot swap in the middle: judged against
an environment's SLO, compared with a baseline, reported as HTML (looked at in headless Chromium) and
as a Prometheus textfile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.backends.local import LocalBackend
from harness.baseline import BaselineFile
from harness.load.profiles import ProfileBook
from harness.load.session import ProfileSession, watch_services
from harness.report.timeseries import Window, windows_from_marks
from harness.slo_check import SloTable, judge
from tests.harness._browser import colour_count, ink, screenshot

pytestmark = pytest.mark.slow

BOOK = ProfileBook.loads(
    """
[endpoints.infer]
method = "POST"
path = "/v2/models/{model}/infer"
body = '{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0.5, -1.0, 1.5, 0.25]}]}'
[endpoints.ready]
path = "/v2/health/ready"

[profiles.swap]
shape = "spike"
users = 4
factor = 2
at_s = 5
for_s = 3
duration_s = 10
think_s = 0.05
timeout_s = 5
endpoints = { infer = 9, ready = 1 }

[slo.ci]                      # generous: a shared 2-core machine
p50_ms = 2000
p99_ms = 5000
error_rate = 0.0
min_samples = { p99 = 200 }
""",
    source="test",
)


def _swap(url: str, token: str, marks: dict[str, float]) -> None:
    marks["swap_started"] = time.time()
    answer = httpx.post(
        f"{url}/admin/models/demo/swap",
        json={"version": "2"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    marks["swap_ended"] = time.time()
    assert answer.status_code == 200, answer.text


def test_a_profile_with_a_hot_swap_is_judged_reported_and_baselined(
    local_backend: LocalBackend, start_local_cluster: Callable, make_demo_spec: Callable, tmp_path: Path
) -> None:
    spec = make_demo_spec(workers=2)
    cluster = start_local_cluster(spec)
    watch = watch_services(local_backend.services(), local_backend.name)
    assert {w.name for w in watch} == {"gateway", "worker-1", "worker-2"}
    labels = {"feature": "hot_swap", "scenario": "swap under the swap profile", "target": "reference"}
    session = ProfileSession.start(
        cluster.gateway_url,
        BOOK,
        "swap",
        model="demo",
        workdir=tmp_path / "load",
        watch=watch,
        labels=labels,
    )
    marks: dict[str, float] = {}
    session.load.wait_for_samples(50, timeout=60)
    swapper = threading.Thread(target=_swap, args=(cluster.gateway_url, spec.admin_token, marks))
    swapper.start()
    baseline = BaselineFile(tmp_path / "baseline.json")
    outcome = session.finish(
        environment="ci", book=BOOK, baseline=baseline, key="hot_swap/swap", save_baseline=True
    )
    swapper.join(120)
    assert "swap_ended" in marks

    infer = [o for o in outcome.samples if o.target.endswith("/infer")]
    assert {o.model_version for o in infer if o.ok} == {"1", "2"}, "both versions answered the profile"
    assert outcome.verdict is not None and [c.name for c in outcome.verdict.checks] == [
        "p50",
        "p99",
        "error_rate",
    ]
    outcome.assert_ok()  # no 5xx during the swap, latency within the generous CI bounds
    cpu = [s.cpu_percent for s in outcome.resources if s.name == "worker-1" and s.cpu_percent is not None]
    assert cpu and max(cpu) > 1.0, "the worker's CPU was measured from /proc while it served the load"
    assert all(s.memory_bytes > 10 * 2**20 for s in outcome.resources), "a Python service holds > 10 MiB"

    # a too-strict SLO fails with a message that names the percentile, the bound and the sample size
    strict = judge(outcome.samples, SloTable("strict", p99_ms=0.001, min_samples={"p99": 100}))
    with pytest.raises(AssertionError, match=r"p99 [\d.]+ ms over \d+ samples exceeds the bound 0.001 ms"):
        strict.assert_met()

    paths = outcome.write(tmp_path / "reports", windows=windows_from_marks(marks))
    page = paths["html"].read_text()
    assert "hot_swap" in page and "SLO ci: met" in page and "window from" in page
    assert "http" not in page.replace("http://127.0.0.1", ""), "the page loads nothing from anywhere"
    prom = paths["prometheus"].read_text()
    assert 'servingbdd_load_requests{feature="hot_swap"' in prom and 'profile="swap"' in prom

    image = screenshot(paths["html"], tmp_path / "report.png")
    assert ink(image) > 0.05 and colour_count(image) > 200, "the rendered report is blank"
    # the swap window is shaded in the charts: the page must show its orange tint somewhere
    assert any(r > 240 and 200 < g < 240 and 170 < b < 220 for (_, (r, g, b)) in image.getcolors(1 << 20))

    # a later run compared with the saved baseline: the numbers are there
    again = ProfileSession.start(cluster.gateway_url, BOOK, "swap", model="demo", workdir=tmp_path / "load2")
    second = again.finish(baseline=BaselineFile.load(tmp_path / "baseline.json"), key="hot_swap/swap")
    assert second.comparison is not None
    assert second.comparison.baseline_n == len([o for o in outcome.samples if o.ok])
    assert second.comparison.current_n == len([o for o in second.samples if o.ok])
    assert 0 <= second.comparison.p_value <= 1


def test_windows_left_open_reach_the_end_of_the_chart(tmp_path: Path) -> None:
    assert windows_from_marks({"fault_started": 5.0})[0] == Window("fault", 5.0, float("inf"))
