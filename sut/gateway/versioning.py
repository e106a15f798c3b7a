"""Versioning and routing, assembled once per gateway: policies, placement of extra versions, shadow
copies, the canary controller and the alert monitor (see each module). ``app.py`` only asks it which
version answers a request, hands it the answers of shadowed requests, and runs its background loops.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from sut.gateway.alerts import AlertMonitor, validate_rule
from sut.gateway.canary import CanaryController
from sut.gateway.clock import GatewayClock
from sut.gateway.placement import Placement
from sut.gateway.policies import Choice, PolicyTable, validate, versions_of
from sut.gateway.routing import Upstream
from sut.gateway.shadow import ShadowCopies

if TYPE_CHECKING:
    from sut.gateway.app import Gateway


class Versioning:
    def __init__(self, gw: Gateway, clock_offset_s: float = 0.0) -> None:
        self.gw = gw
        self.catalog = gw.catalog
        self.clock = GatewayClock(clock_offset_s)
        self.policies = PolicyTable(gw.catalog, self.clock)
        self.placement = Placement(
            gw.catalog, gw.registry, gw.router, gw.swaps.load_timeout, gw.swaps.drain_timeout
        )
        self.shadow = ShadowCopies(gw.router)
        self.locks: dict[str, asyncio.Lock] = {}  # per model: one writer of its routing configuration
        self.canary = CanaryController(
            gw.catalog, self.policies, gw.metrics.recent, gw.swaps, self.placement, self.locks
        )
        self.alerts = AlertMonitor(gw.catalog, gw.metrics.recent, gw.swaps)
        gw.swaps.extra_versions = self.policies.versions_in_use  # new workers load them; swaps keep them
        self._tasks: list[asyncio.Task[None]] = []

    # -- the request path ----------------------------------------------------------------------------
    def choose(self, model: str, version: str | None) -> Choice:
        return self.policies.choose(model, version)

    def answered(self, model: str, choice: Choice, body: bytes, answer: Upstream) -> None:
        """After the client's answer is ready: a shadowed request's copy leaves now."""
        if choice.shadow is not None:
            policy = self.policies.policy(model) or {}
            tolerance = float(policy.get("tolerance", 0.0))
            self.shadow.copy(model, choice.version, choice.shadow, tolerance, body, answer)

    # -- configuration (admin API) ---------------------------------------------------------------------
    def lock(self, model: str) -> asyncio.Lock:
        return self.locks.setdefault(model, asyncio.Lock())

    def config(self, model: str) -> dict[str, Any]:
        self.catalog.get_model(model)
        return dict(self.catalog.routing.get(model) or {})

    async def set_policy(self, model: str, doc: object) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Check, load its versions on the workers, store; (the new policy, the one it replaced)."""
        async with self.lock(model):
            policy = validate(doc, self.catalog, model)
            production = self.catalog.production(model)
            await self.placement.ensure_loaded(model, sorted(versions_of(policy, production) - {production}))
            config = self.config(model)
            previous = config.get("policy")
            await self.catalog.set_routing(model, {**config, "policy": policy})
        await self._unload_unused(model, previous)
        return policy, previous

    async def clear_policy(self, model: str) -> dict[str, Any] | None:
        async with self.lock(model):
            config = self.config(model)
            previous = config.pop("policy", None)
            await self.catalog.set_routing(model, config or None)
        await self._unload_unused(model, previous)
        return previous

    async def set_alert(self, model: str, doc: object) -> dict[str, Any]:
        rule = validate_rule(doc)
        async with self.lock(model):
            await self.catalog.set_routing(model, {**self.config(model), "alert": rule})
        return rule

    async def clear_alert(self, model: str) -> dict[str, Any] | None:
        async with self.lock(model):
            config = self.config(model)
            previous = config.pop("alert", None)
            await self.catalog.set_routing(model, config or None)
        return previous

    async def pin(self, model: str, version: str) -> list[dict[str, Any]]:
        """Keep ``version`` loaded on every worker serving the model (multi-version serving)."""
        async with self.lock(model):
            self.catalog.get_version(model, version)
            loaded = await self.placement.ensure_loaded(model, [version])
            config = self.config(model)
            pinned = sorted({*config.get("pinned", []), version})
            await self.catalog.set_routing(model, {**config, "pinned": pinned})
        return loaded

    async def unpin(self, model: str, version: str) -> list[dict[str, Any]]:
        """Unload ``version`` everywhere; refused (409) while production or a policy routes to it."""
        from sut.errors import ApiError

        async with self.lock(model):
            self.catalog.get_version(model, version)
            if version == self.catalog.production(model):
                raise ApiError(f"version {version!r} of model {model!r} is production: swap first", 409)
            config = self.config(model)
            policy_versions = versions_of(config.get("policy"), self.catalog.production(model))
            if version in policy_versions:
                raise ApiError(
                    f"version {version!r} of model {model!r} is in its routing policy: change the policy "
                    "first",
                    409,
                )
            if version in config.get("pinned", []):
                pinned = [v for v in config["pinned"] if v != version]
                await self.catalog.set_routing(model, {**config, "pinned": pinned})
        return await self.placement.unload(model, version)

    async def _unload_unused(self, model: str, previous: dict[str, Any] | None) -> None:
        """After a policy change: unload the versions only the old policy needed."""
        production = self.catalog.production(model)
        keep = self.policies.versions_in_use(model) | {production}
        for version in sorted(versions_of(previous, production) - keep):
            await self.placement.unload(model, version)

    # -- background loops -------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.canary.run()), loop.create_task(self.alerts.run())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.shadow.close()
