"""``python -m harness.load``: a profile from the command line, judged, reported, baselined (real
Locust against the small V2 server of test_load_runner.py, on 127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.baseline import BaselineFile

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("test_load_runner.py")

PROFILES = """
[endpoints.infer]
path = "/v2/models/{model}/infer"
body = '{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}'
[profiles.short]
shape = "sustained"
users = 2
duration_s = 3
think_s = 0.01
[slo.easy]                    # p95 (20 samples): a busy shared machine may send < 100 in 3 s
p95_ms = 5000
error_rate = 0.0
[slo.strict]
p50_ms = 0.001
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    served = tmp_path_factory.mktemp("cli-server") / "served.txt"
    proc = subprocess.Popen([sys.executable, str(SERVER), str(served)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.load",
            "--profiles",
            str(profiles),
            "--report-dir",
            str(tmp_path / "out"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_met_slo_exits_0_and_writes_the_reports(server: tuple[str, int], tmp_path: Path) -> None:
    url, pid = server
    done = _cli(
        tmp_path,
        "--url",
        url,
        "--profile",
        "short",
        "--model",
        "demo",
        "--env",
        "easy",
        "--watch",
        f"server={pid}",
        "--baseline",
        str(tmp_path / "b.json"),
        "--save-baseline",
        "--label",
        "feature=cli",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SLO 'easy': met" in done.stdout and "baseline saved" in done.stdout
    assert (tmp_path / "out" / "cli-short.html").exists() and (tmp_path / "out" / "cli-short.prom").exists()
    assert len(BaselineFile.load(tmp_path / "b.json").get("short").latencies_s) > 50


def test_a_too_strict_slo_exits_1_naming_percentile_bound_and_samples(
    server: tuple[str, int], tmp_path: Path
) -> None:
    done = _cli(tmp_path, "--url", server[0], "--profile", "short", "--model", "demo", "--env", "strict")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "FAIL p50" in done.stdout and "exceeds the bound 0.001 ms" in done.stdout and "samples" in done.stdout
    )


def test_usage_errors_exit_2_before_any_load(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--url", "http://127.0.0.1:9", "--profile", "nope")
    assert done.returncode == 2 and "no profile 'nope'" in done.stderr
    done = _cli(tmp_path, "--url", "http://127.0.0.1:9", "--profile", "short", "--env", "qa")
    assert done.returncode == 2 and "no SLO table [slo.qa]" in done.stderr
    assert not (tmp_path / "out" / "work").exists(), "nothing was started"
