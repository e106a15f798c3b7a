"""The gateway's admin API as one client: bearer token in, JSON out, every failure one
:class:`AdminApiError` with a one-line message (the CLI, the trainer and the harness's start-up all
talk to the gateway through it, so they read its ``{"error": ...}`` answers the same way)."""

from __future__ import annotations

import json as _json
from typing import Any

import httpx

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class AdminApiError(RuntimeError):
    """A call that failed: ``status`` is the gateway's answer, None when it did not answer; ``detail``
    says why in one line (the gateway's error, or the transport failure)."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method, self.path, self.status, self.detail = method, path, status, detail
        where = f"{method} {path}"
        super().__init__(f"{where}: {detail}" if status is None else f"{where} answered {status}: {detail}")


def error_message(resp: httpx.Response) -> str:
    """One line from a failed answer: its ``error`` (or ``detail``) field, else the first line of it."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip().splitlines()[0] if resp.text.strip() else resp.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return _json.dumps(body)


class AdminClient:
    """One connection pool to one gateway. ``trust_env`` None: a proxy from the environment is used for
    a remote gateway but never for one on this machine (it would stand between us and it)."""

    def __init__(
        self, base_url: str, token: str | None, *, timeout: float = 30.0, trust_env: bool | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if trust_env is None:
            trust_env = httpx.URL(self.base_url).host not in LOCAL_HOSTS
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
            trust_env=trust_env,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer; :class:`AdminApiError` on no answer, 4xx/5xx, or a body not JSON.
        ``timeout``: this call's, else the client's."""
        try:
            resp = self._http.request(
                method,
                path,
                json=json,
                params=params,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:
            raise AdminApiError(
                method, path, None, f"no answer from {self.base_url} ({str(exc) or type(exc).__name__})"
            ) from exc
        if resp.status_code >= 400:
            raise AdminApiError(method, path, resp.status_code, error_message(resp))
        try:
            return resp.json()
        except ValueError as exc:
            raise AdminApiError(method, path, resp.status_code, "the answer is not JSON") from exc

    def get_or_none(self, path: str, *, timeout: float | None = None) -> Any:
        """A GET for polling: None while the gateway does not answer it (yet), whatever the reason."""
        try:
            return self.call("GET", path, timeout=timeout)
        except AdminApiError:
            return None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
