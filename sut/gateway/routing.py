"""Forwarding requests to workers: pick a healthy holder, retry on the others on a broken connection.

Inference requests go over a pooled keep-alive connection per worker (``upstream.UpstreamPool``,
far cheaper than httpx on the hot path); everything else uses one shared ``httpx.AsyncClient``.
Every call runs under the ``--upstream-timeout`` deadline so that no client waits forever on a
paused or slow worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sut.errors import ApiError
from sut.gateway.metrics import GatewayMetrics
from sut.gateway.registry import ModelKey, Worker, WorkerRegistry
from sut.gateway.upstream import UpstreamConnectionError, UpstreamPool

log = logging.getLogger("sut.gateway.routing")

WorkerFailed = Callable[[Worker, str], Awaitable[None]]

# Broken connections (refused, reset, closed before an answer): the request never ran to completion
# on that worker, so running it on another one is safe (inference has no side effects).
_CONNECTION_FAILURES = (
    httpx.ConnectError,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    UpstreamConnectionError,
)


class InFlight:
    """Requests the gateway has sent and not yet answered, per (model, version)."""

    def __init__(self) -> None:
        self.counts: dict[ModelKey, int] = {}
        self._idle: dict[ModelKey, asyncio.Event] = {}

    def enter(self, key: ModelKey) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def leave(self, key: ModelKey) -> None:
        n = self.counts.get(key, 0) - 1
        if n > 0:
            self.counts[key] = n
            return
        self.counts.pop(key, None)
        event = self._idle.pop(key, None)
        if event is not None:
            event.set()

    async def wait_idle(self, key: ModelKey, timeout: float) -> bool:
        """True once nothing is in flight for ``key``; False if that took longer than ``timeout``."""
        if not self.counts.get(key):
            return True
        event = self._idle.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class Upstream:
    """A worker's answer, passed through to the client as is."""

    status: int
    body: bytes
    worker_id: str


class Router:
    def __init__(
        self,
        registry: WorkerRegistry,
        metrics: GatewayMetrics,
        upstream_timeout: float,
        on_worker_failed: WorkerFailed | None = None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.timeout = upstream_timeout
        self.in_flight = InFlight()
        self._on_worker_failed = on_worker_failed
        self.pool = UpstreamPool()  # inference requests (the hot path)
        self.client = httpx.AsyncClient(  # everything else
            # httpx's own timeout is a backstop; asyncio.timeout below enforces the total deadline
            timeout=httpx.Timeout(upstream_timeout + 1.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=4.0),
            trust_env=False,
        )

    async def close(self) -> None:
        await self.pool.close()
        await self.client.aclose()

    async def infer(self, model: str, version: str, body: bytes, pool: str | None = None) -> Upstream:
        """Run one inference on a worker holding (model, version) (in ``pool``, when given); raises
        ApiError 503/504."""
        key = (model, version)
        started = time.perf_counter()
        self.in_flight.enter(key)
        status = 500
        try:
            result = await self._infer_with_retry(model, version, body, pool)
            status = result.status
            return result
        except ApiError as exc:
            status = exc.status
            raise
        finally:
            self.in_flight.leave(key)
            self.metrics.observe(model, version, status, time.perf_counter() - started)

    async def _infer_with_retry(self, model: str, version: str, body: bytes, pool: str | None) -> Upstream:
        path = f"/v2/models/{model}/versions/{version}/infer"
        # Each healthy holder is tried at most once. Only failures that never reached a model are
        # retried (connection refused/reset, a draining worker's 503, a version already unloaded), and
        # each marks the worker unhealthy, so during churn a request may meet a killed worker and a
        # draining one before a good one: retrying only once would fail it needlessly. A timeout is
        # not retried (504 at once), so the deadline bounds the whole request.
        tried: set[str] = set()
        failures: list[str] = []
        quota: list[Upstream] = []  # 429 answers: when every worker gave one, the client gets one
        while (worker := self.registry.pick(model, version, exclude=tried, pool=pool)) is not None:
            if failures:
                self.metrics.retries.labels(model).inc()
            tried.add(worker.id)
            outcome = await self._call(worker, "POST", path, body, model, version)
            if isinstance(outcome, Upstream):
                return outcome
            failures.append(outcome)
            if isinstance(outcome, _Refused):
                quota.append(outcome.upstream)
        if quota and len(quota) == len(failures):
            return quota[-1]
        # out of workers: every holder failed (each is now marked unhealthy) or there was none
        reason = "; ".join(failures) if failures else self.registry.unavailable_reason(model, version, pool)
        if failures:
            reason += "; no other healthy worker holds it"
        raise ApiError(f"no healthy worker can serve model {model!r} version {version!r}: {reason}", 503)

    async def _call(
        self, worker: Worker, method: str, path: str, body: bytes | None, model: str, version: str
    ) -> Upstream | str:
        """The worker's answer, or a description of why it failed in a way worth retrying elsewhere."""
        worker.in_flight += 1
        try:
            async with asyncio.timeout(self.timeout):
                status, content = await self._send(worker.url, method, path, body)
        except (TimeoutError, httpx.TimeoutException):
            raise ApiError(
                f"model {model!r} version {version!r}: {worker.describe()} did not answer "
                f"within the upstream timeout of {self.timeout:g} s",
                504,
            ) from None
        except _CONNECTION_FAILURES as exc:
            reason = f"{worker.describe()} connection failed: {type(exc).__name__}: {exc}"
            await self._worker_failed(worker, reason)
            return reason
        finally:
            worker.in_flight -= 1
        if status == 503:
            # a draining worker (graceful stop): stop sending it work and try another one
            reason = f"{worker.describe()} answered 503: {_error_text(content)}"
            await self._worker_failed(worker, reason)
            return reason
        if status == 429:
            # out of quota: this request tries another worker (the worker stays healthy: not a fault)
            reason = f"worker {worker.id} ({worker.url}) answered 429: {_error_text(content)}"
            return _Refused(reason, Upstream(status, content, worker.id))
        if status == 404 and path.endswith("/infer"):
            # the worker no longer holds the version (unloaded since its last heartbeat)
            worker.models.discard((model, version))
            if self.registry.pick(model, version, exclude={worker.id}) is not None:
                return f"{worker.describe()} answered 404: {_error_text(content)}"
        return Upstream(status, content, worker.id)

    async def _send(self, base_url: str, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if method == "POST" and body is not None and self.pool.supports(base_url):
            return await self.pool.post(base_url, path, body)
        headers = {"content-type": "application/json"} if body is not None else None
        response = await self.client.request(method, base_url + path, content=body, headers=headers)
        return response.status_code, response.content

    async def _worker_failed(self, worker: Worker, reason: str) -> None:
        if self.registry.mark_unhealthy(worker.id):
            log.warning("worker %s marked unhealthy: %s", worker.id, reason)
            if self._on_worker_failed is not None:
                await self._on_worker_failed(worker, reason)

    async def get(self, model: str, version: str, path: str) -> Upstream:
        """Forward a read-only request (model metadata) to any healthy holder of the version."""
        worker = self.registry.pick(model, version)
        if worker is None:
            reason = self.registry.unavailable_reason(model, version)
            raise ApiError(f"no healthy worker can serve model {model!r} version {version!r}: {reason}", 503)
        outcome = await self._call(worker, "GET", path, None, model, version)
        if isinstance(outcome, str):
            raise ApiError(f"model {model!r} version {version!r}: {outcome}", 502)
        return outcome

    async def worker_call(
        self, worker: Worker, path: str, payload: dict[str, Any], timeout: float
    ) -> tuple[int, str]:
        """A repository call (load/unload) to one worker: (status, error text); status 0 = no answer."""
        try:
            async with asyncio.timeout(timeout):
                response = await self.client.post(worker.url + path, json=payload, timeout=timeout + 1.0)
        except (TimeoutError, httpx.TimeoutException):
            return 0, f"no answer within {timeout:g} s"
        except httpx.TransportError as exc:
            return 0, f"connection failed: {type(exc).__name__}: {exc}"
        return response.status_code, "" if response.is_success else _error_text(response.content)


class _Refused(str):
    """A worker's 429 (quota exhausted): retried elsewhere like a 503, but kept to answer with."""

    upstream: Upstream

    def __new__(cls, reason: str, upstream: Upstream) -> _Refused:
        refused = super().__new__(cls, reason)
        refused.upstream = upstream
        return refused


def _error_text(content: bytes) -> str:
    try:
        payload = json.loads(content)
    except ValueError:
        return content[:300].decode(errors="replace")
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return content[:300].decode(errors="replace")
