"""The fault proxy against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from harness.faults.proxy import FaultProxy
from harness.waiting import http_ok, until


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream_port(tmp_path_factory):
    port = _free_port()
    root = tmp_path_factory.mktemp("www")
    (root / "hello.txt").write_text("hello")
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    until(lambda: http_ok(f"http://127.0.0.1:{port}/hello.txt", timeout=0.5), timeout=10, what="the upstream")
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture
def proxy(upstream_port):
    p = FaultProxy("127.0.0.1", upstream_port).start()
    yield p
    p.close()


def _get(proxy: FaultProxy, timeout: float = 2.0) -> httpx.Response:
    return httpx.get(f"{proxy.url}/hello.txt", timeout=timeout)


def test_pass_forwards(proxy):
    assert _get(proxy).text == "hello"


def test_blackhole_holds_then_heal_restores(proxy):
    proxy.set_mode("blackhole")
    with pytest.raises(httpx.ReadTimeout):
        _get(proxy, timeout=0.5)
    proxy.heal()
    assert _get(proxy).text == "hello"


def test_reset_gives_connection_error(proxy):
    proxy.set_mode("reset")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
        _get(proxy)
    proxy.heal()
    assert _get(proxy).status_code == 200


def test_down_refuses_then_comes_back_on_same_port(proxy):
    port = proxy.port
    proxy.set_mode("down")
    with pytest.raises(httpx.ConnectError):
        _get(proxy)
    proxy.set_mode("pass")
    assert proxy.port == port
    assert _get(proxy).text == "hello"


def test_latency_delays_each_direction(proxy):
    started = time.perf_counter()
    _get(proxy)
    baseline = time.perf_counter() - started
    proxy.set_latency(0.2)
    started = time.perf_counter()
    assert _get(proxy).text == "hello"
    delayed = time.perf_counter() - started
    assert delayed >= 0.4, (
        f"expected >= 0.4 s (0.2 s each way), got {delayed:.3f} s (baseline {baseline:.3f})"
    )


def test_unknown_mode_is_refused(proxy):
    with pytest.raises(ValueError, match="unknown proxy mode"):
        proxy.set_mode("sideways")
