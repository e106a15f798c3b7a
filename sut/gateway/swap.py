"""Swap and rollback: load the new version everywhere, flip the alias, drain, unload the old one.

The order is what makes a swap zero-downtime: the old version keeps serving until every worker
holds the new one, the alias flips in one step, and the old version is only unloaded once the
gateway has no request in flight on it. A failed load anywhere undoes the loads that succeeded
and leaves the alias untouched; so does a catalog that cannot record the new alias (its database
down): a refused swap leaves no worker holding the new version.

The registry decides which workers a swap must reach. A worker that leaves it while its load is
pending (expired after missed heartbeats, e.g. cut off by a partition, or deregistered) is no longer
part of the cluster: the swap stops waiting for it and goes on with the others, and names it under
``lost`` in its answer and audit entry (when it registers again it is assigned the production version
like any new worker). If every worker was lost, the swap fails (503) naming them. A load that *fails*
on a worker still registered (an error answer, a connection refused by a dead process, no answer
within the load deadline) still fails the swap, naming the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sut.errors import ApiError
from sut.gateway.catalog import PRODUCTION, Catalog, check_name
from sut.gateway.registry import Worker, WorkerRegistry
from sut.gateway.routing import Router

log = logging.getLogger("sut.gateway.swap")

# statuses a worker's load answer may carry that the gateway passes on as they are
_PASS_THROUGH = {400, 404, 409, 422, 507}
# how often a pending load checks that its worker is still registered (the expiry sweep runs every
# half heartbeat interval, so this adds at most a few tens of ms to a swap that lost a worker)
_MEMBERSHIP_POLL_S = 0.05


class SwapCoordinator:
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
        # model -> version being swapped in; workers registering meanwhile are told to load it too
        self.targets: dict[str, str] = {}
        self.unloaded: set[str] = set()  # models unloaded through the repository API: assigned to nobody
        self._locks: dict[str, asyncio.Lock] = {}
        # versions of a model that must stay loaded besides production (routing policies, pinned
        # versions): given to new workers, never unloaded by a swap; set by the gateway (sut.gateway.policies)
        self.extra_versions: Callable[[str], set[str]] = lambda model: set()

    def assignments(self) -> list[dict[str, Any]]:
        """What a newly registered worker should load: every production version, plus swap targets."""
        out = []
        for name, entry in self.catalog.models.items():
            if name in self.unloaded:
                continue
            wanted = [
                entry.aliases.get(PRODUCTION),
                self.targets.get(name),
                *sorted(self.extra_versions(name)),
            ]
            for version in dict.fromkeys(v for v in wanted if v is not None):
                rec = entry.versions.get(version)
                if rec is not None:
                    out.append(
                        {
                            "model": name,
                            "version": version,
                            "artifact_uri": rec.artifact_uri,
                            "sha256": rec.sha256,
                        }
                    )
        return out

    async def swap(
        self,
        model: str,
        version: object,
        action: str = "swap",
        *,
        actor: str = "admin",
        reason: str | None = None,
    ) -> dict[str, Any]:
        """``actor`` (who asked: an admin token's name, ``canary-controller``, ``alert``) and ``reason``
        go into the audit trail with the outcome."""
        version = check_name("version", version)
        self.catalog.get_version(model, version)
        lock = self._locks.setdefault(model, asyncio.Lock())
        if lock.locked():
            raise ApiError(f"a swap of model {model!r} is already in progress", 409)
        async with lock:
            return await self._swap_locked(model, version, action, {"actor": actor, "reason": reason})

    async def load(self, model: str, version: str) -> dict[str, Any]:
        """Repository ``load``: ``version`` becomes production and every healthy worker holds it."""
        lock = self._locks.setdefault(model, asyncio.Lock())
        if lock.locked():
            raise ApiError(f"a swap of model {model!r} is already in progress", 409)
        who: dict[str, str | None] = {"actor": "admin", "reason": "repository load"}
        async with lock:
            self.unloaded.discard(model)
            if self.registry.serving_model(model):  # a hot swap (or nothing, if already production)
                return await self._swap_locked(model, version, "load", who)
            # the model was unloaded: every healthy worker loads it again
            started = time.monotonic()
            rec = self.catalog.get_version(model, version)
            workers = [w for w in self.registry.workers.values() if w.healthy]
            payload = {
                "parameters": {"version": version, "artifact_uri": rec.artifact_uri, "sha256": rec.sha256}
            }
            loaded, failed, lost = await self._load_all(workers, model, payload)
            if failed or (lost and not loaded):
                await self._undo(model, version, loaded)
                self.unloaded.add(model)
                raise await self._failure(model, None, version, "load", failed, loaded, who, lost)
            protect = 2 * self.registry.heartbeat_interval + 1.0
            for w in loaded:
                w.add_loaded((model, version), protect)
            try:
                await self.catalog.set_alias(model, PRODUCTION, version)
            except Exception:  # the catalog refused it: the model stays unloaded
                await self._undo(model, version, loaded)
                self.unloaded.add(model)
                raise
            answer = self._answer(model, None, version, started, loaded, lost=lost)
            await self.catalog.audit("load", model, {k: v for k, v in answer.items() if k != "model"})
            return answer

    async def unload(self, model: str) -> dict[str, Any]:
        """Repository ``unload``: no routing to any version of the model, in-flight requests finish on
        their workers (the worker's unload waits for them), every version released."""
        lock = self._locks.setdefault(model, asyncio.Lock())
        async with lock:
            self.unloaded.add(model)  # no new request is accepted for it from now on
            versions = sorted({v for w in self.registry.workers.values() for m, v in w.models if m == model})
            for version in versions:  # the accepted ones finish first
                await self.router.in_flight.wait_idle((model, version), self.drain_timeout)
                await self._unload_everywhere(model, version)
            details = {"versions": versions}
            await self.catalog.audit("unload", model, details)
            return {"model": model, "unloaded": versions}

    async def rollback(
        self, model: str, *, actor: str = "admin", reason: str | None = None
    ) -> dict[str, Any]:
        target = self.catalog.previous_production(model)
        if target is None:
            raise ApiError(f"model {model!r} has no previous {PRODUCTION} version to roll back to", 409)
        return await self.swap(model, target, action="rollback", actor=actor, reason=reason)

    async def _swap_locked(
        self, model: str, version: str, action: str, who: dict[str, str | None]
    ) -> dict[str, Any]:
        started = time.monotonic()
        old = self.catalog.production(model)
        if old == version:
            return self._answer(model, old, version, started, [], note="already the production version")
        rec = self.catalog.get_version(model, version)
        self.targets[model] = version
        try:
            workers = self.registry.serving_model(model)
            already = {w.id for w in workers if (model, version) in w.models}  # not ours to undo
            payload = {
                "parameters": {"version": version, "artifact_uri": rec.artifact_uri, "sha256": rec.sha256}
            }
            loaded, failed, lost = await self._load_all(workers, model, payload)
            if failed or (lost and not loaded):
                ours = [w for w in loaded if w.id not in already]
                await self._undo(model, version, ours)
                raise await self._failure(model, old, version, action, failed, ours, who, lost)
            workers = loaded
            protect = 2 * self.registry.heartbeat_interval + 1.0  # until a heartbeat sent after the load
            for w in workers:
                w.add_loaded((model, version), protect)
            try:
                await self.catalog.set_alias(model, PRODUCTION, version)
            except Exception:  # the catalog refused the flip (its database is down): nothing changed
                await self._undo(model, version, [w for w in workers if w.id not in already])
                raise
        finally:
            self.targets.pop(model, None)
        drained = True
        if old is not None and old not in self.extra_versions(model):
            drained = await self.router.in_flight.wait_idle((model, old), self.drain_timeout)
            await self._unload_everywhere(model, old)
        answer = self._answer(model, old, version, started, workers, drained=drained, lost=lost)
        details = {k: v for k, v in answer.items() if k != "model"}
        await self.catalog.audit(action, model, {**details, **who})
        return answer

    async def _load_all(
        self, workers: list[Worker], model: str, payload: dict[str, Any]
    ) -> tuple[list[Worker], list[tuple[Worker, int, str]], list[Worker]]:
        """Load on every worker at once: (loaded, failed with status and reason, lost). A worker that
        leaves the registry while its load is pending is lost: its call is cancelled, not waited for."""
        tasks = {asyncio.ensure_future(self._load(w, model, payload)): w for w in workers}
        loaded: list[Worker] = []
        failed: list[tuple[Worker, int, str]] = []
        lost: list[Worker] = []
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, timeout=_MEMBERSHIP_POLL_S)
            for task in done:
                worker = tasks[task]
                status, text = task.result()
                if status == 200:
                    loaded.append(worker)
                elif self.registry.workers.get(worker.id) is worker:
                    failed.append((worker, status, text))
                else:  # the call failed because the worker went away: it left, it did not refuse
                    lost.append(worker)
            for task in [t for t in pending if self.registry.workers.get(tasks[t].id) is not tasks[t]]:
                task.cancel()
                pending.discard(task)
                lost.append(tasks[task])
        for worker in lost:
            log.warning(
                "%s left the registry while loading %s: the swap goes on without it",
                worker.describe(),
                model,
            )
        order = {w.id: i for i, w in enumerate(workers)}
        return (
            sorted(loaded, key=lambda w: order[w.id]),
            sorted(failed, key=lambda f: order[f[0].id]),
            sorted(lost, key=lambda w: order[w.id]),
        )

    async def _load(self, worker: Worker, model: str, payload: dict[str, Any]) -> tuple[int, str]:
        path = f"/v2/repository/models/{model}/load"
        return await self.router.worker_call(worker, path, payload, self.load_timeout)

    async def _unload(self, worker: Worker, model: str, version: str) -> tuple[int, str]:
        path = f"/v2/repository/models/{model}/unload"
        payload = {"parameters": {"version": version}}
        return await self.router.worker_call(worker, path, payload, self.load_timeout)

    async def _undo(self, model: str, version: str, loaded: list[Worker]) -> None:
        for w, status, text in await self._unload_from(loaded, model, version):
            log.warning("undo: unload of %s v%s on %s failed: %s %s", model, version, w.id, status, text)

    async def _unload_everywhere(self, model: str, version: str) -> None:
        holders = [w for w in self.registry.workers.values() if (model, version) in w.models]
        for w, status, text in await self._unload_from(holders, model, version):
            details = {"version": version, "worker": w.id, "status": status, "reason": text}
            await self.catalog.audit_best_effort("unload_failed", model, details)

    async def _unload_from(
        self, workers: list[Worker], model: str, version: str
    ) -> list[tuple[Worker, int, str]]:
        """Unload the version on these workers; the failures."""
        key = (model, version)
        for w in workers:
            w.unloading.add(key)  # stop routing to it now; a stale heartbeat must not bring it back
            w.models.discard(key)
            w.loaded_by_gateway.pop(key, None)
        try:
            results = await asyncio.gather(*(self._unload(w, model, version) for w in workers))
        finally:
            for w in workers:
                w.unloading.discard(key)
        return [
            (w, status, text) for w, (status, text) in zip(workers, results, strict=True) if status != 200
        ]

    async def _failure(
        self,
        model: str,
        old: str | None,
        version: str,
        action: str,
        failed: list[tuple[Worker, int, str]],
        loaded: list[Worker],
        who: dict[str, str | None],
        lost: Sequence[Worker] = (),
    ) -> ApiError:
        parts = [f"{w.describe()} answered {status or 'nothing'}: {text}" for w, status, text in failed]
        if lost:
            left = ", ".join(w.describe() for w in lost)
            parts.append(f"left the registry while loading: {left}")
        message = (
            f"{action} of model {model!r} to version {version!r} failed, {PRODUCTION} stays at {old!r}: "
            + "; ".join(parts)
        )
        details = {
            "from_version": old,
            "to_version": version,
            "failures": [
                {"worker": w.id, "name": w.name, "url": w.url, "status": s, "reason": t} for w, s, t in failed
            ],
            "lost": [_worker_entry(w) for w in lost],
            "undone_on": [w.id for w in loaded],
            **who,
        }
        await self.catalog.audit_best_effort(f"{action}_failed", model, details)
        if not failed:  # every worker it was loading on left: nobody can serve the new version
            return ApiError(message, 503)
        statuses = {s for _, s, _ in failed}
        if len(statuses) == 1 and (status := statuses.pop()) in _PASS_THROUGH:
            return ApiError(message, status)
        return ApiError(message, 504 if all("no answer within" in t for _, _, t in failed) else 502)

    def _answer(
        self,
        model: str,
        old: str | None,
        version: str,
        started: float,
        workers: list[Worker],
        drained: bool = True,
        note: str | None = None,
        lost: Sequence[Worker] = (),
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "model": model,
            "from_version": old,
            "to_version": version,
            "duration_s": round(time.monotonic() - started, 3),
            "workers": [w.id for w in workers],
            "drained": drained,
        }
        if lost:
            answer["lost"] = [_worker_entry(w) for w in lost]
        if note:
            answer["note"] = note
        return answer


def _worker_entry(worker: Worker) -> dict[str, str]:
    return {"worker": worker.id, "name": worker.name, "url": worker.url}
