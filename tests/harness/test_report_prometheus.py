"""Prometheus textfile export of a run, and the push to a Pushgateway (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.observations import Observation
from harness.report.prometheus import push, run_registry, write_textfile
from harness.slo_check import SloTable, judge

LABELS = {"feature": "hot_swap", "scenario": "swap under load", "target": "reference", "profile": "steady"}


def _run() -> list[Observation]:
    ok = [
        Observation(started=100 + i * 0.01, latency_s=0.002 + (i % 10) * 0.001, status=200)
        for i in range(300)
    ]
    return [*ok, Observation(started=103.5, latency_s=0.5, status=503), Observation(103.6, 1.0, 0)]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in LABELS)))] = s.value
            assert {k: s.labels[k] for k in LABELS} == LABELS, s
    return out


def test_textfile_holds_the_runs_figures_with_the_labels(tmp_path: Path) -> None:
    verdict = judge(_run(), SloTable("staging", p50_ms=5, p99_ms=8, error_rate=0.001))
    path = write_textfile(tmp_path / "prom" / "run.prom", run_registry(_run(), LABELS, verdict))
    got = _samples(path.read_text())
    assert got[("servingbdd_load_requests", (("status", "200"),))] == 300
    assert got[("servingbdd_load_requests", (("status", "503"),))] == 1
    assert got[("servingbdd_load_requests", (("status", "0"),))] == 1
    assert got[("servingbdd_load_latency_seconds", (("quantile", "0.5"),))] == pytest.approx(0.006)
    assert got[("servingbdd_load_latency_seconds", (("quantile", "0.99"),))] == pytest.approx(0.011)
    assert got[("servingbdd_load_error_ratio", ())] == pytest.approx(2 / 302)
    assert got[("servingbdd_load_throughput_rps", ())] == pytest.approx(302 / 4.6)  # first start to last end
    assert got[("servingbdd_load_duration_seconds", ())] == pytest.approx(4.6)
    p99 = (("check", "p99"), ("environment", "staging"))
    assert got[("servingbdd_load_slo_passed", p99)] == 0 and got[("servingbdd_load_slo_bound", p99)] == 0.008
    errors = (("check", "error_rate"), ("environment", "staging"))
    assert got[("servingbdd_load_slo_passed", errors)] == 0


def test_a_refused_percentile_is_absent_not_guessed(tmp_path: Path) -> None:
    few = _run()[:50]
    got = _samples(write_textfile(tmp_path / "few.prom", run_registry(few, LABELS)).read_text())
    quantiles = {dict(k[1]).get("quantile") for k in got if k[0] == "servingbdd_load_latency_seconds"}
    assert quantiles == {"0.5", "0.95", "1"}, "p99 needs 100 samples"


def test_unknown_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown label"):
        run_registry(_run(), {"team": "x"})


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_push_puts_the_group_named_by_the_labels(gateway: str) -> None:
    _Gateway.received.clear()
    push(gateway, run_registry(_run(), LABELS), LABELS)
    ((method, path, body),) = _Gateway.received
    assert method == "PUT"
    assert path.startswith("/metrics/job/servingbdd/")
    segments = path.split("/")[4:]
    group = dict(zip(segments[::2], segments[1::2], strict=True))
    assert group == {
        "feature": "hot_swap",
        "profile": "steady",
        "scenario@base64": base64.urlsafe_b64encode(b"swap under load").decode(),  # a space: base64
        "target": "reference",
    }
    assert b"servingbdd_load_requests" in body
