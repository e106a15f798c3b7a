"""The one waiting module: ``until`` gives up at once when a watched service has died, ``poll`` returns
what it last saw, ``http_ok`` asks a real server directly. Watched services are real processes run by
the local backend."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.backends.base import ServiceSpec
from harness.backends.local import LocalBackend
from harness.processes import free_port
from harness.waiting import ServiceExited, WaitTimeout, Watch, during, http_ok, log_tail, poll, until


class _Counter:
    """A probe that counts its calls and returns the count."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_until_returns_the_first_result_that_is_done() -> None:
    probe = _Counter()
    assert until(probe, lambda n: n >= 3, timeout=5, what="three calls", interval=0.001) == 3
    assert probe.calls == 3


def test_until_uses_truthiness_by_default() -> None:
    answers = iter([None, "", [], "ready"])
    assert until(lambda: next(answers), timeout=5, what="an answer", interval=0.001) == "ready"


def test_until_times_out_naming_what_and_the_last_result_seen() -> None:
    probe = _Counter()
    began = time.monotonic()
    with pytest.raises(WaitTimeout) as raised:
        until(
            probe, lambda n: False, timeout=0.3, what="the moon", interval=0.02, seen=lambda n: f"{n} calls"
        )
    took = time.monotonic() - began
    message = str(raised.value)
    assert message.startswith("the moon did not happen within 0.3 s; last seen: ")
    assert message.endswith(f"{probe.calls} calls")
    assert 0.3 <= took < 2.0
    assert probe.calls >= 2, "the probe is called again until the deadline"
    assert isinstance(raised.value, TimeoutError)


def test_until_probes_once_more_at_the_deadline() -> None:
    """A state reached during the last sleep is still seen: the probe runs once after the deadline."""
    calls: list[float] = []

    def probe() -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 2

    assert until(probe, timeout=0.05, what="the second call", interval=0.2) is True


def test_poll_returns_the_last_result_instead_of_raising() -> None:
    probe = _Counter()
    assert poll(probe, lambda n: n >= 2, timeout=5, interval=0.001) == 2
    late = _Counter()
    began = time.monotonic()
    result = poll(late, lambda n: False, timeout=0.2, interval=0.02)
    assert result == late.calls >= 2
    assert 0.2 <= time.monotonic() - began < 2.0


def test_during_probes_for_the_whole_window_and_returns_every_result() -> None:
    probe = _Counter()
    began = time.monotonic()
    results = during(probe, lambda n: n > 0, seconds=0.2, what="a positive count", interval=0.02)
    took = time.monotonic() - began
    assert 0.2 <= took < 2.0
    assert results == list(range(1, probe.calls + 1)), "every result, in order"
    assert probe.calls >= 3, "called at once, every interval and once more at the end"


def test_during_without_a_check_collects_the_window() -> None:
    assert during(lambda: "sample", seconds=0.0, what="one sample") == ["sample"]


def test_during_fails_at_the_first_result_that_breaks_the_state() -> None:
    probe = _Counter()
    began = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        during(
            probe,
            lambda n: n < 3,
            seconds=30,
            what="fewer than 3 calls",
            interval=0.01,
            seen=lambda n: f"{n} calls",
        )
    assert time.monotonic() - began < 5, "a broken state ends the window at once, not at its end"
    assert probe.calls == 3
    message = str(raised.value)
    assert message.startswith("fewer than 3 calls did not hold for 30 s: it broke after ")
    assert message.endswith("; seen: 3 calls")


def test_during_shows_the_breaking_result_by_default() -> None:
    answers = iter([{"id": "w1"}, {"id": "w1"}, None])
    with pytest.raises(AssertionError, match=r"seen: None$"):
        during(
            lambda: next(answers), lambda a: a is not None, seconds=30, what="worker-1 listed", interval=0.001
        )


def test_log_tail_keeps_the_last_lines() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    assert log_tail(text, 3) == "line 97\nline 98\nline 99"
    assert log_tail("") == ""


# -- watching real services ----------------------------------------------------------------------------
@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    backend = LocalBackend(tmp_path / "services")
    yield backend
    backend.teardown()


def _python_service(name: str, code: str) -> ServiceSpec:
    """A service that is just a Python snippet; not awaited on a health path."""
    return ServiceSpec(name, "tool", lambda p: [p.python, "-c", code], health_path=None)


def test_a_watched_service_that_dies_fails_the_wait_at_once_with_its_log(backend: LocalBackend) -> None:
    code = "import sys, time; print('loading the catalog', flush=True); time.sleep(0.3); sys.exit(3)"
    backend.launch(_python_service("doomed", code))
    backend.launch(_python_service("steady", "import time; time.sleep(60)"))
    began = time.monotonic()
    with pytest.raises(ServiceExited) as raised:
        until(
            lambda: False,
            timeout=60,
            what="the catalog to load",
            interval=0.02,
            watch=Watch(backend, ("steady", "doomed")),
        )
    assert time.monotonic() - began < 15, "a dead service must end the wait long before its timeout"
    message = str(raised.value)
    assert message.startswith("doomed exited (code 3) while waiting for the catalog to load")
    assert "last lines of its log:" in message and "loading the catalog" in message
    assert backend.exit_code("steady") is None, "the other watched service is alive and is not blamed"


def test_several_watches_are_all_checked(backend: LocalBackend) -> None:
    backend.launch(_python_service("alive", "import time; time.sleep(60)"))
    backend.launch(_python_service("gone", "pass"))
    until(lambda: backend.exit_code("gone") is not None, timeout=30, what="gone to exit")
    with pytest.raises(ServiceExited, match=r"^gone exited \(code 0\)"):
        until(
            lambda: False,
            timeout=30,
            what="anything",
            watch=[Watch(backend, ("alive",)), Watch(backend, ("gone",))],
        )


def test_a_live_watched_service_does_not_stop_the_wait(backend: LocalBackend) -> None:
    backend.launch(_python_service("alive", "import time; time.sleep(60)"))
    probe = _Counter()
    assert until(
        probe, lambda n: n >= 5, timeout=10, what="5 calls", interval=0.01, watch=Watch(backend, ("alive",))
    )
    with pytest.raises(WaitTimeout):
        until(lambda: False, timeout=0.2, what="never", watch=Watch(backend, ("alive",)))


# -- http_ok against a real server ---------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/live": 200, "/created": 201, "/missing": 404, "/broken": 500}.get(self.path, 404)
        if self.path == "/slow":
            time.sleep(1.0)
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_ok_is_true_for_2xx_only(server: str) -> None:
    assert http_ok(f"{server}/live")
    assert http_ok(f"{server}/created")
    assert not http_ok(f"{server}/missing")
    assert not http_ok(f"{server}/broken")


def test_http_ok_is_false_when_nobody_answers_in_time(server: str) -> None:
    assert not http_ok(f"http://127.0.0.1:{free_port()}/live")  # refused
    began = time.monotonic()
    assert not http_ok(f"{server}/slow", timeout=0.2)
    assert time.monotonic() - began < 1.0


def test_http_ok_never_goes_through_a_proxy_from_the_environment(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert http_ok(f"{server}/live")


def test_the_backends_await_health_with_it(backend: LocalBackend, tmp_path: Path) -> None:
    """A launch returns only once the health path answers 2xx (here: after the server took a second)."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "health").write_text("ok")
    code = (
        "import http.server, functools, sys, time; time.sleep(1.0); "
        "handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2]); "
        "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), handler).serve_forever()"
    )
    spec = ServiceSpec(
        "files",
        "tool",
        lambda p: [sys.executable, "-c", code, str(p.port()), str(tmp_path / "www")],
        health_path="/health",
    )
    info = backend.launch(spec)
    assert info.running and http_ok(f"{info.url}/health")
    assert backend.timings["files"] >= 1.0
