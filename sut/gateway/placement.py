"""Which versions the workers hold besides production: load a version on every worker serving its model,
or unload it everywhere.

Routing policies (A/B, canary, shadow, time rules) and explicit pins need their versions loaded on the
same workers as production before any request is routed to them; that is this module's job. A load that
fails on any worker is undone on the others and reported with the worker's own status (507 over the
memory budget, 422 a corrupt artifact, ...), like a failed swap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sut.errors import ApiError
from sut.gateway.catalog import Catalog
from sut.gateway.registry import Worker, WorkerRegistry
from sut.gateway.routing import Router

log = logging.getLogger("sut.gateway.placement")

_PASS_THROUGH = {400, 404, 409, 422, 507}


class Placement:
    def __init__(
        self,
        catalog: Catalog,
        registry: WorkerRegistry,
        router: Router,
        load_timeout: float,
        drain_timeout: float,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.router = router
        self.load_timeout = load_timeout
        self.drain_timeout = drain_timeout

    async def ensure_loaded(self, model: str, versions: list[str]) -> list[dict[str, Any]]:
        """Load each version on every healthy worker serving ``model`` that lacks it; all or nothing.
        Returns what was loaded where; raises ApiError (the worker's status when they all agree)."""
        workers = self.registry.serving_model(model)
        done: list[tuple[Worker, str]] = []
        for version in versions:
            rec = self.catalog.get_version(model, version)
            todo = [w for w in workers if (model, version) not in w.models]
            payload = {
                "parameters": {"version": version, "artifact_uri": rec.artifact_uri, "sha256": rec.sha256}
            }
            path = f"/v2/repository/models/{model}/load"
            results = await asyncio.gather(
                *(self.router.worker_call(w, path, payload, self.load_timeout) for w in todo)
            )
            failed = [(w, s, t) for w, (s, t) in zip(todo, results, strict=True) if s != 200]
            loaded = [w for w, (s, _) in zip(todo, results, strict=True) if s == 200]
            done += [(w, version) for w in loaded]
            protect = 2 * self.registry.heartbeat_interval + 1.0  # until a heartbeat sent after the load
            for w in loaded:
                w.add_loaded((model, version), protect)
            if failed:
                for w, v in done:
                    await self._unload_one(w, model, v)
                parts = [f"worker {w.id} ({w.url}) answered {s or 'nothing'}: {t}" for w, s, t in failed]
                message = f"loading model {model!r} version {version!r} failed: " + "; ".join(parts)
                statuses = {s for _, s, _ in failed}
                status = statuses.pop() if len(statuses) == 1 else 502
                raise ApiError(message, status if status in _PASS_THROUGH else 502)
        return [{"worker": w.id, "version": v} for w, v in done]

    async def unload(self, model: str, version: str) -> list[dict[str, Any]]:
        """Stop routing to the version on every worker, wait for the gateway's requests on it, unload it.
        Returns each worker's outcome."""
        key = (model, version)
        holders = [w for w in self.registry.workers.values() if key in w.models]
        for w in holders:
            w.unloading.add(key)  # a heartbeat sent before the unload must not bring it back
            w.models.discard(key)
            w.loaded_by_gateway.pop(key, None)
        try:
            await self.router.in_flight.wait_idle(key, self.drain_timeout)
            results = await asyncio.gather(*(self._call_unload(w, model, version) for w in holders))
        finally:
            for w in holders:
                w.unloading.discard(key)
        return [
            {"worker": w.id, "status": s, **({"error": t} if t else {})}
            for w, (s, t) in zip(holders, results, strict=True)
        ]

    async def _unload_one(self, worker: Worker, model: str, version: str) -> None:
        worker.models.discard((model, version))
        worker.loaded_by_gateway.pop((model, version), None)
        status, text = await self._call_unload(worker, model, version)
        if status != 200:
            log.warning("undo: unload of %s v%s on %s failed: %s %s", model, version, worker.id, status, text)

    async def _call_unload(self, worker: Worker, model: str, version: str) -> tuple[int, str]:
        path = f"/v2/repository/models/{model}/unload"
        return await self.router.worker_call(
            worker, path, {"parameters": {"version": version}}, self.load_timeout
        )
