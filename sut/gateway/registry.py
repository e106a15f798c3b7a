"""The worker registry: who is up, where, what each one holds, and whether it answers.

Everything here runs on the gateway's event loop, so plain dicts are enough: no call in this
module awaits, which also makes id assignment atomic under concurrent registrations.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

ModelKey = tuple[str, str]  # (model, version)


@dataclass
class Worker:
    id: str
    url: str
    name: str
    models: set[ModelKey] = field(default_factory=set)
    healthy: bool = True
    last_seen: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    memory_used: int = 0
    # versions being unloaded by the gateway: a heartbeat sent before the unload must not re-add them
    unloading: set[ModelKey] = field(default_factory=set)
    # versions the gateway just loaded, until when: a heartbeat sent before the load must not drop them
    loaded_by_gateway: dict[ModelKey, float] = field(default_factory=dict)
    # SHA-256 of the worker's own token (answered once, at registration): only it may heartbeat or
    # deregister this entry (see sut.gateway.auth); never listed
    token_digest: bytes = field(default=b"", repr=False)
    pool: str = "default"  # a named group of workers: one provider of a model (see sut.gateway.failover)

    def add_loaded(self, key: ModelKey, protect_for: float) -> None:
        self.models.add(key)
        self.loaded_by_gateway[key] = time.monotonic() + protect_for

    def describe(self) -> str:
        """How errors name a worker: as its operator named it, then the gateway's id and address
        (``worker-2 (id w-9b208a-1, http://127.0.0.1:8012)``), so a feature's "worker-2" is found in them."""
        label = self.name if "worker" in self.name else f"worker {self.name}".rstrip()
        return f"{label} (id {self.id}, {self.url})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "name": self.name,
            "healthy": self.healthy,
            "in_flight": self.in_flight,
            "memory_used": self.memory_used,
            "pool": self.pool,
            "models": [{"name": m, "version": v} for m, v in sorted(self.models)],
        }


def parse_models(raw: object) -> set[ModelKey]:
    """``[{"name", "version"}, ...]`` from a worker; raises ValueError saying what is wrong."""
    if raw is None:
        return set()
    if not isinstance(raw, list):
        raise ValueError("'models' must be a list of {name, version}")
    out: set[ModelKey] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError("each entry of 'models' must be an object with 'name' and 'version'")
        name, version = item.get("name"), item.get("version")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise ValueError("each entry of 'models' needs string 'name' and 'version'")
        out.add((name, version))
    return out


class WorkerRegistry:
    def __init__(self, heartbeat_interval: float, expiry_misses: int) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.expiry_misses = expiry_misses
        self.workers: dict[str, Worker] = {}
        self._ids = itertools.count(1)
        # Ids carry this gateway process's boot token: after a gateway restart the counter starts again,
        # and a plain "w-1" could be handed to one worker while another still heartbeats as "w-1" (its
        # heartbeats would then be taken for the new one's, and it would never register again).
        self._boot = secrets.token_hex(3)
        self._rr = itertools.count()

    @property
    def expiry_seconds(self) -> float:
        return self.heartbeat_interval * self.expiry_misses

    def register(
        self, url: str, name: str, models: set[ModelKey], token_digest: bytes = b"", pool: str = "default"
    ) -> Worker:
        worker_id = f"w-{self._boot}-{next(self._ids)}"
        worker = Worker(
            id=worker_id,
            url=url.rstrip("/"),
            name=name,
            models=set(models),
            token_digest=token_digest,
            pool=pool,
        )
        self.workers[worker.id] = worker
        return worker

    def heartbeat(
        self, worker_id: str, models: set[ModelKey] | None, memory_used: int | None
    ) -> Worker | None:
        """Refresh a worker; None when the id is unknown (expired or never registered)."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return None
        worker.last_seen = time.monotonic()
        worker.healthy = True
        if models is not None:
            now = worker.last_seen
            fresh = {k for k, until in worker.loaded_by_gateway.items() if until > now}
            worker.loaded_by_gateway = {k: worker.loaded_by_gateway[k] for k in fresh}
            worker.models = (models | fresh) - worker.unloading
        if memory_used is not None:
            worker.memory_used = memory_used
        return worker

    def deregister(self, worker_id: str) -> Worker | None:
        return self.workers.pop(worker_id, None)

    def expire(self, now: float | None = None) -> list[Worker]:
        """Remove the workers that missed ``expiry_misses`` heartbeats in a row."""
        now = time.monotonic() if now is None else now
        gone = [w for w in self.workers.values() if now - w.last_seen > self.expiry_seconds]
        for w in gone:
            del self.workers[w.id]
        return gone

    def mark_unhealthy(self, worker_id: str) -> bool:
        """Stop routing to a worker until its next heartbeat; True if it was healthy before."""
        worker = self.workers.get(worker_id)
        if worker is None or not worker.healthy:
            return False
        worker.healthy = False
        return True

    def holders(self, model: str, version: str) -> list[Worker]:
        """Every registered worker that holds the version, healthy or not."""
        return [w for w in self.workers.values() if (model, version) in w.models]

    def serving_model(self, model: str) -> list[Worker]:
        """Healthy workers holding any version of the model (the ones a swap must reach)."""
        return [w for w in self.workers.values() if w.healthy and any(m == model for m, _ in w.models)]

    def pick(
        self, model: str, version: str, exclude: set[str] = frozenset(), pool: str | None = None
    ) -> Worker | None:
        """Least in-flight among healthy holders (of ``pool``, when given), ties broken round robin."""
        candidates = [
            w
            for w in self.workers.values()
            if w.healthy
            and w.id not in exclude
            and (model, version) in w.models
            and (pool is None or w.pool == pool)
        ]
        if not candidates:
            return None
        start = next(self._rr) % len(candidates)
        rotated = candidates[start:] + candidates[:start]
        return min(rotated, key=lambda w: w.in_flight)

    def unavailable_reason(self, model: str, version: str, pool: str | None = None) -> str:
        """Why ``pick`` found nobody, in words an operator can act on."""
        if not self.workers:
            return "no workers are registered"
        holders = [w for w in self.holders(model, version) if pool is None or w.pool == pool]
        if not holders:
            where = f" in pool {pool!r}" if pool is not None else ""
            return f"no registered worker{where} has this version loaded"
        return f"all {len(holders)} worker(s) holding it are unhealthy"

    def counts_by_state(self) -> dict[str, int]:
        healthy = sum(1 for w in self.workers.values() if w.healthy)
        return {"healthy": healthy, "unhealthy": len(self.workers) - healthy}

    def loaded_versions(self) -> dict[ModelKey, int]:
        counts: dict[ModelKey, int] = {}
        for w in self.workers.values():
            for key in w.models:
                counts[key] = counts.get(key, 0) + 1
        return counts
