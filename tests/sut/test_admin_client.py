"""The admin-API client (:mod:`sut.admin_client`) and how the CLI and the trainer read its errors,
against a stub gateway on a local port (canned answers, no cluster)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from sut import launcher
from sut.admin_client import AdminApiError, AdminClient, error_message
from sut.cli_admin import AdminClient as CliAdminClient
from sut.cli_admin import CliError
from sut.trainer.gateway_client import GatewayAdmin, GatewayError

# path -> (status, content type, body)
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "/admin/status": (200, "application/json", b'{"models": []}'),
    "/admin/missing": (404, "application/json", b'{"error": "no model named x"}'),
    "/admin/detail": (422, "application/json", b'{"detail": "version is required"}'),
    "/admin/list": (409, "application/json", b'["a", "b"]'),
    "/admin/text": (502, "text/plain", b"\n  bad gateway upstream\nsecond line\n"),
    "/admin/empty": (503, "text/plain", b""),
    "/admin/html": (200, "text/html", b"<html>hello</html>"),
    "/admin/token": (401, "application/json", b'{"error": "bad token"}'),
    "/admin/models/x/versions": (404, "application/json", b'{"error": "no model x"}'),
}


class _Stub(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append(
            {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": body,
            }
        )
        if self.path == "/admin/slow":
            time.sleep(0.5)
        status, ctype, payload = ANSWERS.get(self.path.split("?")[0], (200, "application/json", b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up waiting (the timeout test) breaks the pipe: not news


@pytest.fixture
def gateway() -> Iterator[str]:
    _Stub.seen = []
    server = _Server(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def nowhere() -> str:
    return f"http://127.0.0.1:{launcher.free_port()}"  # nothing listens there


def test_call_sends_the_token_and_returns_the_json(gateway: str) -> None:
    with AdminClient(gateway + "/", "s3cret") as api:
        assert api.call("GET", "/admin/status") == {"models": []}
        assert api.call("POST", "/admin/other", json={"version": "2"}, params={"after": 3}) == {}
    assert [s["auth"] for s in _Stub.seen] == ["Bearer s3cret"] * 2
    assert _Stub.seen[1]["path"] == "/admin/other?after=3"
    assert json.loads(_Stub.seen[1]["body"]) == {"version": "2"}


def test_no_token_sends_no_authorization(gateway: str) -> None:
    with AdminClient(gateway, None) as api:
        api.call("GET", "/admin/status")
    assert _Stub.seen[0]["auth"] is None


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/admin/missing", 404, "no model named x"),
        ("/admin/detail", 422, "version is required"),
        ("/admin/list", 409, '["a", "b"]'),
        ("/admin/text", 502, "bad gateway upstream"),
        ("/admin/empty", 503, "Service Unavailable"),
        ("/admin/html", 200, "the answer is not JSON"),
    ],
)
def test_a_failed_call_is_one_error_with_one_line(gateway: str, path: str, status: int, detail: str) -> None:
    with AdminClient(gateway, "t") as api, pytest.raises(AdminApiError) as caught:
        api.call("GET", path)
    exc = caught.value
    assert (exc.method, exc.path, exc.status, exc.detail) == ("GET", path, status, detail)
    assert str(exc) == f"GET {path} answered {status}: {detail}"


def test_error_message_reads_error_then_detail_then_text() -> None:
    assert error_message(httpx.Response(500, json={"error": "e", "detail": "d"})) == "e"
    assert error_message(httpx.Response(500, json={"detail": "d"})) == "d"
    assert error_message(httpx.Response(500, text="first\nsecond")) == "first"
    assert error_message(httpx.Response(500, text="  ")) == "Internal Server Error"


def test_no_answer_has_no_status_and_get_or_none_stays_quiet(nowhere: str) -> None:
    with AdminClient(nowhere, "t", timeout=2.0) as api:
        with pytest.raises(AdminApiError) as caught:
            api.call("GET", "/admin/status")
        assert api.get_or_none("/admin/status") is None
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert str(caught.value).startswith(f"GET /admin/status: no answer from {nowhere} (")


def test_get_or_none_is_none_on_an_error_or_a_body_not_json(gateway: str) -> None:
    with AdminClient(gateway, "t") as api:
        assert api.get_or_none("/admin/status") == {"models": []}
        assert api.get_or_none("/admin/missing") is None
        assert api.get_or_none("/admin/html") is None


def test_a_proxy_from_the_environment_is_used_for_a_remote_gateway_only() -> None:
    def trusts(url: str, **kwargs: bool) -> bool:
        with AdminClient(url, "t", **kwargs) as api:
            return api._http.trust_env

    assert not trusts("http://127.0.0.1:8000")
    assert not trusts("http://localhost:8000")
    assert not trusts("http://[::1]:8000")
    assert trusts("https://gateway.example.com")
    assert not trusts("https://gateway.example.com", trust_env=False)


# -- the CLI's one-line messages ---------------------------------------------------------------------


def cli_message(url: str, path: str, what: str = "status failed", timeout: float = 2.0) -> str:
    cli = CliAdminClient(url, "t", timeout=timeout)
    try:
        with pytest.raises(CliError) as caught:
            cli.request("GET", path, what=what)
    finally:
        cli.close()
    return str(caught.value)


def test_the_cli_says_what_failed_with_the_gateways_reason(gateway: str) -> None:
    assert cli_message(gateway, "/admin/missing", "swap refused") == "swap refused (404): no model named x"
    assert cli_message(gateway, "/admin/text") == "status failed (502): bad gateway upstream"
    assert (
        cli_message(gateway, "/admin/html")
        == "status failed: the gateway answered something that is not JSON"
    )
    assert cli_message(gateway, "/admin/token") == f"the gateway at {gateway} rejected the admin token (401)"


def test_the_cli_names_an_unreachable_gateway(nowhere: str) -> None:
    message = cli_message(nowhere, "/admin/status")
    assert message.startswith(f"gateway unreachable at {nowhere} (") and "\n" not in message


def test_the_cli_says_when_the_gateway_is_too_slow(gateway: str) -> None:
    assert cli_message(gateway, "/admin/slow", timeout=0.1) == f"gateway {gateway} did not answer in time"


# -- the trainer's view ---------------------------------------------------------------------------------


def test_the_trainers_errors_are_still_gateway_errors(gateway: str) -> None:
    with GatewayAdmin(gateway, "t") as admin:
        assert not admin._http.trust_env  # a peer in the same cluster, never behind a proxy
        assert admin.production_versions() == {}
        with pytest.raises(GatewayError, match=r"^GET /admin/models/x/versions answered 404: no model x$"):
            admin.versions("x")
