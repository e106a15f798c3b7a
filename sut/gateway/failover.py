"""The provider lock and failover: one provider serves a model at a time, and the gateway
moves the lock on explicit, counted failures.

* Configuring a model's providers (``PUT /admin/models/{m}/providers``) gives the lock to the first one
  (``acquire``); removing them ``release``\\ s it. Models without providers are routed as before.
* Every inference goes to the lock holder only, and its answer names it (``X-Provider``). An outcome
  that is a failure condition (``providers.classify``) counts against the provider it was sent to; when
  the holder reaches ``threshold`` consecutive failures the lock moves to the next provider in priority
  order that is not known to be failing (``failover``). The check and the move happen with no await in
  between, so many in-flight failures make exactly one switch. A request that failed after the lock
  moved away from its provider is sent once to the new holder: one answer, from one provider.
* A health monitor probes every provider each ``probe_interval_s`` (V2 readiness, then a canary
  inference built from the model's metadata); a failed probe of the holder counts like a failed request,
  so the gateway fails over before clients notice. A higher-priority provider gets the lock back
  (``failback``) only once it has passed every probe for ``hold_s`` (no flapping).
* The lock and the counters are written to the catalog (``providers/<model>``, every 0.25 s when they
  changed, at once on a switch), so they survive a restart and a catalog recovery (``lock_restored``).
  A restarted gateway knows no worker until they register again: for ``startup_grace_s`` (the registry's
  expiry window) a pool with no registered worker is not judged at all, neither by requests nor probes.
* The audit trail (every acquire, release, failover, failback, restore; time, providers, reason, the
  counters then) is bounded (``--failover-audit-limit``, 1,000 by default): the oldest entries are
  dropped and the drop counted. It is kept in the catalog too (``failover-audit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter, Gauge

from sut.errors import ApiError
from sut.gateway.failover_audit import FailoverAudit
from sut.gateway.provider_lock import ModelLock
from sut.gateway.provider_probe import ProviderProbe, error_text, external_infer_url
from sut.gateway.providers import (
    CONNECTION,
    TIMEOUT,
    FailoverPolicy,
    ProviderHealth,
    ProviderSpec,
    classify,
    is_client_error,
    parse_config,
)

if TYPE_CHECKING:
    from sut.gateway.catalog import Catalog
    from sut.gateway.metrics import GatewayMetrics
    from sut.gateway.registry import WorkerRegistry
    from sut.gateway.routing import Router

log = logging.getLogger("sut.gateway.failover")

SETTINGS_PREFIX = "providers/"
AUDIT_KEY = "failover-audit"
FLUSH_INTERVAL_S = 0.25
TICK_S = 0.05


@dataclass
class Served:
    """One answer for the client: from exactly one provider (None: the model has no providers)."""

    status: int
    body: bytes
    provider: str | None = None
    failure: str | None = None  # the failure condition this outcome was, if any
    detail: str = ""
    judged: bool = True  # False: not the provider's doing (the gateway just started), counted nowhere


class Failover:
    def __init__(
        self,
        router: Router,
        registry: WorkerRegistry,
        catalog: Catalog,
        metrics: GatewayMetrics,
        *,
        audit_limit: int = 1000,
        startup_grace_s: float = 0.0,
    ) -> None:
        self.router = router
        self.started = time.monotonic()
        self.startup_grace_s = startup_grace_s
        self.registry = registry
        self.catalog = catalog
        self.locks: dict[str, ModelLock] = {}
        self.audit = FailoverAudit(audit_limit)
        self._dirty: set[str] = set()  # models whose lock document must be written
        self._removed: set[str] = set()
        self._audit_dirty = False
        backstop = None if router.timeout is None else router.timeout + 1.0  # asyncio.timeout is the deadline
        self._client = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(backstop))
        self.prober = ProviderProbe(self._client, registry, self._pool_unknown_yet)
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = Counter(
            "sut_provider_requests_total",
            "Inference outcomes per provider (success, client_error, or the failure condition)",
            ["model", "provider", "outcome"],
            registry=metrics.registry,
        )
        self.switch_count = Counter(
            "sut_provider_switches_total",
            "Lock moves (failover, failback)",
            ["model", "action"],
            registry=metrics.registry,
        )
        self.holder = Gauge(
            "sut_provider_active",
            "1 for the provider holding the model's lock",
            ["model", "provider"],
            registry=metrics.registry,
        )
        self.metrics = metrics

    # -- startup, configuration ------------------------------------------------------------------------
    def load(self) -> None:
        """Restore the audit trail and every lock from the catalog (before serving)."""
        raw_audit = self.catalog.settings.get(AUDIT_KEY)
        if raw_audit:
            try:
                self.audit.restore(json.loads(raw_audit))
            except (ValueError, TypeError) as exc:
                log.error("failover audit trail in the catalog is unreadable, starting a new one: %s", exc)
        for key, raw in sorted(self.catalog.settings.items()):
            if not key.startswith(SETTINGS_PREFIX):
                continue
            model = key[len(SETTINGS_PREFIX) :]
            try:
                lock = ModelLock.from_document(model, json.loads(raw))
            except (ValueError, TypeError, KeyError) as exc:
                log.error("providers of %s in the catalog are unreadable (ignored): %s", model, exc)
                continue
            self.locks[model] = lock
            self._set_holder_gauge(lock)
            self._audit(lock, "lock_restored", provider=lock.active, reason="gateway started")
            log.info("providers of %s restored: lock held by %s", model, lock.active)

    async def configure(self, model: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Set a model's providers (highest priority first); the first one acquires the lock."""
        self.catalog.get_model(model)  # 404 for an unknown model
        specs, policy = parse_config(payload)
        old = self.locks.get(model)
        if old is not None:
            self._audit(old, "release", provider=old.active, reason="providers reconfigured")
        lock = ModelLock(model, specs, policy, active=specs[0].name)
        self.locks[model] = lock
        self._removed.discard(model)
        self._audit(lock, "acquire", provider=lock.active, reason="providers configured (highest priority)")
        self._set_holder_gauge(lock)
        await self._write(model)
        return lock.status()

    async def remove(self, model: str) -> dict[str, Any]:
        lock = self.locks.pop(model, None)
        if lock is None:
            raise ApiError(f"model {model!r} has no providers configured", 404)
        self._audit(lock, "release", provider=lock.active, reason="providers removed")
        self.holder.remove(model, lock.active)
        self._removed.add(model)
        await self._write(model)
        return {"model": model, "released": lock.active}

    def status(self, model: str) -> dict[str, Any]:
        lock = self.locks.get(model)
        if lock is None:
            raise ApiError(f"model {model!r} has no providers configured", 404)
        return {
            **lock.status(),
            "audit": {
                "entries": len(self.audit.entries),
                "limit": self.audit.limit,
                "dropped": self.audit.dropped,
            },
        }

    # -- the request path --------------------------------------------------------------------------------
    async def infer(self, model: str, version: str, body: bytes) -> Served:
        lock = self.locks.get(model)
        if lock is None:  # no providers: the workers as before (errors raise ApiError as before)
            upstream = await self.router.infer(model, version, body)
            return Served(upstream.status, upstream.body)
        name = lock.active
        served = await self._send(lock, name, version, body)
        self._record(lock, name, served)
        if served.failure is not None and lock.active != name and self.locks.get(model) is lock:
            # the lock moved away from the provider that failed us (by this failure or another one):
            # the request never got an answer, so its one answer comes from the new holder
            retry = lock.active
            served = await self._send(lock, retry, version, body)
            self._record(lock, retry, served)
        return served

    async def _send(self, lock: ModelLock, name: str, version: str, body: bytes) -> Served:
        spec = lock.spec(name)
        if spec.kind == "pool":
            try:
                upstream = await self.router.infer(lock.model, version, body, pool=spec.pool)
            except ApiError as exc:
                error = f"provider {name} ({spec.describe()}): {exc.message}"
                served = Served(exc.status, json.dumps({"error": error}).encode(), name, detail=exc.message)
                served.judged = not self._pool_unknown_yet(spec)
            else:
                served = Served(upstream.status, upstream.body, name, detail=error_text(upstream.body))
            served.failure = classify(served.status)
            return served
        return await self._send_external(lock, spec, version, body)

    async def _send_external(self, lock: ModelLock, spec: ProviderSpec, version: str, body: bytes) -> Served:
        url = external_infer_url(spec, lock.model)
        started = time.perf_counter()
        transport = None
        try:
            async with asyncio.timeout(self.router.timeout):
                response = await self._client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
            status, content = response.status_code, response.content
            detail = error_text(content) if status >= 400 else ""
        except (TimeoutError, httpx.TimeoutException):
            transport, status = TIMEOUT, 504
            detail = f"no answer within the upstream timeout of {self.router.timeout:g} s"
        except httpx.TransportError as exc:
            transport, status = CONNECTION, 502
            detail = f"connection failed: {type(exc).__name__}: {exc}"
        if transport is not None:
            content = json.dumps({"error": f"provider {spec.name} ({spec.describe()}): {detail}"}).encode()
        self.metrics.observe(lock.model, version, status, time.perf_counter() - started)
        return Served(status, content, spec.name, classify(status, transport), detail)

    def _record(self, lock: ModelLock, name: str, served: Served) -> None:
        """Count an outcome against the provider it came from; fail over when the holder reaches the
        threshold. No await in here: concurrent failures cannot both see the old holder and both switch."""
        counters = lock.counters[name]
        if not served.judged:
            return
        if served.failure is None:
            if is_client_error(served.status):
                counters.client_error()
                self.requests.labels(lock.model, name, "client_error").inc()
            else:
                counters.success()
                self.requests.labels(lock.model, name, "success").inc()
            self._dirty.add(lock.model)
            return
        self._failed(lock, name, served.failure, served.detail or f"answered {served.status}")

    def _failed(self, lock: ModelLock, name: str, reason: str, detail: str) -> None:
        counters = lock.counters[name]
        counters.failure(reason, detail)
        lock.health[name].unhealthy()
        self.requests.labels(lock.model, name, reason).inc()
        self._dirty.add(lock.model)
        if lock.active != name or counters.consecutive_failures < lock.policy.threshold:
            return
        target = self._failover_target(lock, name)
        if target is None:
            if not lock.blocked_reported:
                log.error(
                    "%s: %s is failing (%s) and no other provider is healthy: keeping the lock",
                    lock.model,
                    name,
                    reason,
                )
                lock.blocked_reported = True
            return
        why = f"{counters.consecutive_failures} consecutive failures of {name}, the last {reason}: {detail}"
        self._switch(lock, target, "failover", why)

    def _failover_target(self, lock: ModelLock, failing: str) -> str | None:
        """The first provider in priority order, other than ``failing``, that its last probe found
        healthy; else the first one not probed yet; else none."""
        others = [s.name for s in lock.providers if s.name != failing]
        for name in others:
            if lock.health[name].ok:
                return name
        for name in others:
            if not lock.health[name].probed:
                return name
        return None

    def _switch(self, lock: ModelLock, to: str, action: str, reason: str) -> None:
        previous = lock.active
        lock.active, lock.since = to, time.time()
        lock.switches += 1
        lock.blocked_reported = False
        lock.counters[to].consecutive_failures = 0  # a clean start: its health just got it the lock
        self._audit(lock, action, provider=to, from_provider=previous, reason=reason)
        self.switch_count.labels(lock.model, action).inc()
        self.holder.remove(lock.model, previous)
        self._set_holder_gauge(lock)
        log.warning("%s: %s %s -> %s: %s", lock.model, action, previous, to, reason)
        self._flush_soon()

    # -- the health monitor --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Probe every model's providers on schedule and write what changed to the catalog."""
        last_flush = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for lock in list(self.locks.values()):
                if not lock.probing and now >= lock.next_probe:
                    lock.probing = True
                    lock.next_probe = now + lock.policy.probe_interval_s
                    self._spawn(self._probe_model(lock))
            if now - last_flush >= FLUSH_INTERVAL_S:
                last_flush = now
                await self.flush()

    async def _probe_model(self, lock: ModelLock) -> None:
        try:
            version = self.catalog.production(lock.model)
            if version is None:
                return
            results = await asyncio.gather(
                *(self.prober.probe(lock, spec, version) for spec in lock.providers)
            )
            if self.locks.get(lock.model) is not lock:
                return  # reconfigured meanwhile
            for spec, probe in zip(lock.providers, results, strict=True):
                if not probe.get("judged", True):
                    continue
                lock.health[spec.name].record(probe)
                if not probe["ok"]:
                    self._failed(lock, spec.name, probe["failure"], f"health probe: {probe['reason']}")
            self._maybe_failback(lock)
        except Exception:  # the monitor must outlive any one probe
            log.exception("health probe of %s failed", lock.model)
        finally:
            lock.probing = False

    def _maybe_failback(self, lock: ModelLock) -> None:
        """The best provider above the holder that has been healthy for ``hold_s`` gets the lock back."""
        for spec in lock.providers[: lock.rank(lock.active)]:
            health = lock.health[spec.name]
            if self._ready_for_failback(health, lock.policy):
                held = f"{health.healthy_for():.1f} s (hold {lock.policy.hold_s:g} s)"
                why = f"{spec.name} passed every probe for {held}"
                self._switch(lock, spec.name, "failback", why)
                return

    @staticmethod
    def _ready_for_failback(health: ProviderHealth, policy: FailoverPolicy) -> bool:
        return health.ok and health.healthy_for() >= policy.hold_s

    def _pool_unknown_yet(self, spec: ProviderSpec) -> bool:
        """Within the startup grace, a pool none of whose workers has registered yet is not judged."""
        if spec.kind != "pool" or time.monotonic() - self.started >= self.startup_grace_s:
            return False
        return not any(w.pool == spec.pool for w in self.registry.workers.values())

    # -- persistence --------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write every changed lock document and the audit trail to the catalog (errors are logged; the
        document stays dirty and the next flush tries again)."""
        for model in list(self._dirty | self._removed):
            self._dirty.discard(model)
            self._removed.discard(model)
            try:
                await self._write(model)
            except Exception as exc:
                self._dirty.add(model)
                log.warning("providers of %s not stored yet: %s", model, exc)
        if self._audit_dirty:
            self._audit_dirty = False
            try:
                await self.catalog.put_setting(AUDIT_KEY, json.dumps(self.audit.document()))
            except Exception as exc:
                self._audit_dirty = True
                log.warning("failover audit trail not stored yet: %s", exc)

    async def _write(self, model: str) -> None:
        lock = self.locks.get(model)
        value = json.dumps(lock.document()) if lock is not None else None
        await self.catalog.put_setting(SETTINGS_PREFIX + model, value)

    def _flush_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop (start-up): the first flush writes it
            self._spawn(self.flush())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 2.0)
        with contextlib.suppress(Exception):
            await self.flush()
        await self._client.aclose()

    # -- small helpers ------------------------------------------------------------------------------------
    def _audit(self, lock: ModelLock, action: str, **details: Any) -> None:
        self.audit.add(lock.model, action, counters=lock.counters_now(), **details)
        self._audit_dirty = True

    def _set_holder_gauge(self, lock: ModelLock) -> None:
        self.holder.labels(lock.model, lock.active).set(1)
