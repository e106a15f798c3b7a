"""The worker's side of the gateway's worker registry: register, load assignments, heartbeat, deregister.

Runs as one asyncio task on the worker's event loop, started once the HTTP server is listening.
Registration retries with backoff until the gateway answers; a heartbeat answered 404 (the gateway
expired or forgot us) or 403 (the entry is no longer ours) registers again and gets a new id.

Every call carries the join token (``Authorization: Bearer``), read again from its file when the file
changes (a rotation needs no restart); heartbeat and deregistration also carry the worker's own token,
which the registration answered (``X-Worker-Token``). Neither is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Executor
from typing import Any

import httpx

from sut.errors import ApiError
from sut.token_source import TokenError, TokenSource
from sut.worker.model_store import ModelStore

log = logging.getLogger("sut.worker")

REQUEST_TIMEOUT = 5.0
DEREGISTER_TIMEOUT = 2.0
BACKOFF_START = 0.1
BACKOFF_MAX = 2.0


class Registrar:
    def __init__(
        self,
        gateway_url: str,
        name: str,
        store: ModelStore,
        pool: Executor,
        join_token: TokenSource | None = None,
        worker_pool: str = "default",
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.worker_pool = worker_pool  # the pool of workers the gateway lists us in
        self.join_token = join_token
        self.worker_token: str | None = None  # from the registration answer: proves an entry is ours
        self.name = name
        self.store = store
        self.pool = pool  # loads run in the worker's admin pool
        self.advertise_url = ""  # set once the server knows its port
        self.worker_id: str | None = None
        self.heartbeat_interval = 1.0
        self._task: asyncio.Task | None = None
        self._attempt: asyncio.Future | None = None
        self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT, trust_env=False)

    def start(self, advertise_url: str) -> None:
        self.advertise_url = advertise_url
        self._task = asyncio.get_running_loop().create_task(self._run(), name="registrar")

    def _headers(self, *, own: bool) -> dict[str, str]:
        """The join token (and, with ``own``, the worker token); none when there is no token to send."""
        headers: dict[str, str] = {}
        if self.join_token is not None:
            try:
                headers["Authorization"] = f"Bearer {self.join_token.read()}"
            except TokenError as exc:
                log.error("no join token to send: %s", exc)
        if own and self.worker_token:
            headers["X-Worker-Token"] = self.worker_token
        return headers

    def _models(self) -> list[dict[str, str]]:
        return [{"name": lv.model, "version": lv.version} for lv in self.store.loaded()]

    async def _run(self) -> None:
        while True:
            try:
                answer = await self._register()
                await self._load_assignments(answer.get("assignments") or [])
                while await self._heartbeat():  # the first one reports the assignments just loaded
                    await asyncio.sleep(self.heartbeat_interval)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the worker registered whatever happened; say what it was
                log.exception("registration loop failed; starting over")
                await asyncio.sleep(BACKOFF_MAX)

    async def _register(self) -> dict[str, Any]:
        delay = BACKOFF_START
        while True:
            body = {
                "url": self.advertise_url,
                "name": self.name,
                "models": self._models(),
                "pool": self.worker_pool,
            }
            # The attempt runs as its own task so that a SIGTERM arriving mid-request can still learn
            # the id the gateway gave us, and deregister it (see ``stop``).
            self._attempt = asyncio.ensure_future(self._post_register(body))
            try:
                answer = await asyncio.shield(self._attempt)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("registration with %s failed: %s; retry in %.1fs", self.gateway_url, exc, delay)
                answer = None
            if answer is not None:
                return answer
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _post_register(self, body: dict[str, Any]) -> dict[str, Any] | None:
        response = await self._client.post(
            f"{self.gateway_url}/internal/workers/register", json=body, headers=self._headers(own=False)
        )
        if response.status_code >= 300:
            log.warning("registration refused: %s %s", response.status_code, response.text[:200])
            return None
        answer = response.json()
        self.worker_id = str(answer["id"])
        self.worker_token = str(answer.get("worker_token") or "") or None
        self.heartbeat_interval = float(answer.get("heartbeat_interval") or 1.0)
        log.info("registered with %s as worker %s", self.gateway_url, self.worker_id)
        return answer

    async def _load_assignments(self, assignments: list[dict[str, Any]]) -> None:
        for item in assignments:
            try:
                model, version = str(item["model"]), str(item["version"])
                uri = str(item.get("artifact_uri") or f"{model}/{version}/model.onnx")
                sha256 = item.get("sha256")
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self.pool, self.store.load, model, version, uri, sha256)
            except ApiError as exc:
                log.error("assignment %s failed: %s", item, exc.message)
            except (KeyError, TypeError) as exc:
                log.error("malformed assignment %s: %s", item, exc)

    async def _heartbeat(self) -> bool:
        """Send one heartbeat; False when the gateway no longer knows us (register again)."""
        body = {"models": self._models(), "memory_used": self.store.memory_used()}
        try:
            response = await self._client.post(
                f"{self.gateway_url}/internal/workers/{self.worker_id}/heartbeat",
                json=body,
                headers=self._headers(own=True),
            )
        except httpx.HTTPError as exc:
            log.warning("heartbeat to %s failed: %s", self.gateway_url, exc)
            return True
        if response.status_code in (404, 403):
            why = "forgot" if response.status_code == 404 else "no longer gives us"
            log.warning(
                "gateway %s worker %s (heartbeat %s); registering again",
                why,
                self.worker_id,
                response.status_code,
            )
            self.worker_id = self.worker_token = None
            return False
        if response.status_code >= 300:
            log.warning("heartbeat answered %s: %s", response.status_code, response.text[:200])
        return True

    async def stop(self) -> None:
        """Stop registering and heartbeating (before deregistering, so a 404 cannot re-register us)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._attempt is not None and not self._attempt.done():
            # A registration is on the wire: wait (briefly) for its answer, so we know what to deregister.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._attempt, DEREGISTER_TIMEOUT)

    async def deregister(self) -> None:
        """Stop, then tell the gateway we are leaving; errors are only logged: we are leaving anyway."""
        await self.stop()
        if self.worker_id is not None:
            try:
                response = await self._client.delete(
                    f"{self.gateway_url}/internal/workers/{self.worker_id}",
                    timeout=DEREGISTER_TIMEOUT,
                    headers=self._headers(own=True),
                )
                log.info("deregistered worker %s: %s", self.worker_id, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("deregistration failed (ignored): %s", exc)
            self.worker_id = self.worker_token = None
        await self._client.aclose()
