"""The canary controller: moves a canary rollout through its stages, judging the canary on what the gateway
measured, and rolls it back or promotes it without anyone stepping in.

Every ``interval`` it reads, for each running canary, the gateway's own record of the canary version's
answers since its current stage began (:mod:`sut.gateway.recent`, fed by the same ``observe`` as the
Prometheus metrics): error rate (5xx) and p99 latency. Once the stage has ``min_requests`` canary answers:

- a breach (error rate above ``max_error_rate``, p99 above ``max_p99_ms``, or, when the rollout gives
  ``max_p99_over_stable_ms``, p99 more than that above the stable version's in the same window) sends
  all traffic back to the stable version at once (the in-memory decision changes before anything is
  written), records why in the policy and the audit trail (actor ``canary-controller``), then unloads the
  canary;
- a stage that lasted ``stage_seconds`` without a breach passes: the next stage's share applies; after the
  last stage (100 %) the canary is promoted to production and the old stable version is unloaded.

A rollout with ``graduated`` (``reduced_share``, ``persist_seconds``) answers a breach in three steps
instead: the canary's share drops at once to ``reduced_share`` (status ``reduced``, audit
``canary_reduced``); the canary is then judged in consecutive windows of ``min_requests`` answers at that
share: the first window that still breaches raises an alert (audit ``canary_alert``); a later one rolls
the canary back as above once ``persist_seconds`` have passed since the reduction; a clean window ends
the reduction (audit ``canary_recovered``) and the stage it was reduced from starts again.

The stage (with every judgment) is written back to the policy in the catalog, so a restarted gateway
resumes the rollout at the stage it had reached (the stage's clock starts again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sut.errors import ApiError
from sut.gateway.catalog import Catalog, utc_now
from sut.gateway.placement import Placement
from sut.gateway.policies import LIVE, PROMOTED, REDUCED, ROLLED_BACK, RUNNING, PolicyTable
from sut.gateway.recent import RecentAnswers, WindowStats
from sut.gateway.swap import SwapCoordinator

log = logging.getLogger("sut.gateway.canary")

ACTOR = "canary-controller"


class CanaryController:
    def __init__(
        self,
        catalog: Catalog,
        policies: PolicyTable,
        recent: RecentAnswers,
        swaps: SwapCoordinator,
        placement: Placement,
        locks: dict[str, asyncio.Lock],
        interval: float = 0.1,
    ) -> None:
        self.catalog = catalog
        self.policies = policies
        self.recent = recent
        self.swaps = swaps
        self.placement = placement
        self.locks = locks  # per model: one writer of its routing configuration at a time
        self.interval = interval
        # model -> (policy id, stage, status, when the judged window started)
        self._stage_clock: dict[str, tuple[int, int, str, float]] = {}
        self._reduced_since: dict[str, float] = {}  # model -> when its canary's share was reduced

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for model in list(self.catalog.routing):
                try:
                    await self.tick(model)
                except Exception as exc:  # one model's trouble must not stop the others' rollouts
                    log.warning("canary of %s: %s: %s", model, type(exc).__name__, exc)

    async def tick(self, model: str) -> None:
        compiled = self.policies.compiled(model)
        if compiled is None or compiled.kind != "canary" or compiled.status not in LIVE:
            self._stage_clock.pop(model, None)
            self._reduced_since.pop(model, None)
            return
        doc = compiled.doc
        now = time.monotonic()
        clock = self._stage_clock.get(model)
        if clock is None or clock[:3] != (id(doc), compiled.stage, compiled.status):
            clock = self._stage_clock[model] = (id(doc), compiled.stage, compiled.status, now)
        stats = self.recent.stats(model, doc["canary"], since=clock[3])
        if stats.requests < doc["min_requests"]:
            return
        stable = self.recent.stats(model, doc["stable"], since=clock[3])
        breach = self._breach(doc, stats, stable)
        if compiled.status == REDUCED:
            await self._judge_reduced(model, compiled, stats, breach, now)
        elif breach and doc.get("graduated"):
            await self._reduce(model, compiled, stats, breach, now)
        elif breach:
            await self._roll_back(model, compiled, stats, breach)
        elif now - clock[3] >= doc["stage_seconds"]:
            await self._pass_stage(model, compiled, stats)

    @staticmethod
    def _breach(doc: dict[str, Any], stats: WindowStats, stable: WindowStats) -> str | None:
        """Why the canary breaches its limits in this window, or None. The p99 relative to the stable
        version is judged only when the stable version answered ``min_requests`` in the same window (at
        100 % it gets nothing): the machine's own load then weighs on both sides alike."""
        reasons = []
        if stats.error_rate > doc["max_error_rate"]:
            reasons.append(
                f"error rate {stats.error_rate:.1%} ({stats.errors} of {stats.requests}) "
                f"above {doc['max_error_rate']:.1%}"
            )
        p99_ms = (stats.p99_s or 0.0) * 1000
        if p99_ms > doc["max_p99_ms"]:
            reasons.append(f"p99 {p99_ms:.0f} ms above {doc['max_p99_ms']:g} ms")
        over = doc.get("max_p99_over_stable_ms")
        if over is not None and stable.requests >= doc["min_requests"] and stable.p99_s is not None:
            stable_ms = stable.p99_s * 1000
            if p99_ms > stable_ms + over:
                reasons.append(
                    f"p99 {p99_ms:.0f} ms more than {over:g} ms above the stable version's {stable_ms:.0f} ms"
                )
        return " and ".join(reasons) or None

    def _judgment(self, compiled: Any, stats: WindowStats, verdict: str) -> dict[str, Any]:
        """One judged window: the share the canary had during it, the verdict, the canary's figures."""
        return {"stage": compiled.stage, "share": compiled.share, "at": utc_now(),
                "verdict": verdict, **stats.as_dict()}  # fmt: skip

    # -- graduated rollback ----------------------------------------------------------------------------
    async def _reduce(self, model: str, compiled: Any, stats: WindowStats, breach: str, now: float) -> None:
        doc, graduated = compiled.doc, compiled.doc["graduated"]
        judgment = self._judgment(compiled, stats, "reduce")
        stage_share = compiled.share
        compiled.status = REDUCED
        compiled.set_share(graduated["reduced_share"])  # from the next request on
        self._reduced_since[model] = now
        reason = (
            f"canary {doc['canary']} breached at {stage_share:g} %: {breach}; its share is reduced to "
            f"{graduated['reduced_share']:g} % and it is rolled back if the breach persists "
            f"{graduated['persist_seconds']:g} s"
        )
        log.warning("canary of %s reduced: %s", model, reason)
        await self._store(model, doc, status=REDUCED, judgment=judgment, reason=reason)
        await self._audit("canary_reduced", model, doc, reason, judgment)

    async def _judge_reduced(
        self, model: str, compiled: Any, stats: WindowStats, breach: str | None, now: float
    ) -> None:
        """One window at the reduced share: recover, alert, or (the breach persisted) roll back."""
        doc, graduated = compiled.doc, compiled.doc["graduated"]
        since = self._reduced_since.setdefault(model, now)  # a restarted gateway counts again
        share = f"{graduated['reduced_share']:g} %"
        stage_share = doc["stages"][compiled.stage]
        if breach is None:
            judgment = self._judgment(compiled, stats, "recover")
            compiled.status = RUNNING
            compiled.set_stage(compiled.stage)  # the stage's own share again; the stage starts over
            self._reduced_since.pop(model, None)
            reason = (
                f"canary {doc['canary']} no longer breaches at {share}: back to the {stage_share:g} % stage"
            )
            log.info("canary of %s recovered: %s", model, reason)
            await self._store(model, doc, status=RUNNING, judgment=judgment, reason=reason, alerted=False)
            await self._audit("canary_recovered", model, doc, reason, judgment)
            return
        persisted = now - since
        if doc.get("alerted") and persisted >= graduated["persist_seconds"]:
            await self._roll_back(
                model,
                compiled,
                stats,
                f"{breach}; the breach persisted {persisted:.1f} s after the share was reduced from "
                f"{stage_share:g} %",
            )
            return
        judgment = self._judgment(compiled, stats, "alert")
        reason = f"canary {doc['canary']} still breaches at its reduced share of {share}: {breach}"
        first = not doc.get("alerted")
        await self._store(model, doc, judgment=judgment, alerted=True, alert=reason)
        if first:
            log.warning("canary of %s: alert: %s", model, reason)
            await self._audit("canary_alert", model, doc, reason, judgment)

    async def _audit(
        self, action: str, model: str, doc: dict[str, Any], reason: str, judgment: dict[str, Any]
    ) -> None:
        await self.catalog.audit_best_effort(
            action,
            model,
            {"actor": ACTOR, "reason": reason, "stable": doc["stable"], "canary": doc["canary"], **judgment},
        )

    # -- the end of a rollout --------------------------------------------------------------------------
    async def _roll_back(self, model: str, compiled: Any, stats: WindowStats, breach: str) -> None:
        doc = compiled.doc
        judgment = self._judgment(compiled, stats, "breach")
        compiled.status = ROLLED_BACK  # from the next request on, only the stable version answers
        reason = f"canary {doc['canary']} breached at {compiled.share:g} %: {breach}"
        log.warning("canary of %s rolled back: %s", model, reason)
        await self._store(model, doc, status=ROLLED_BACK, judgment=judgment, reason=reason)
        await self._audit("canary_rollback", model, doc, reason, judgment)
        if doc["canary"] not in self.policies.versions_in_use(model) | {self.catalog.production(model)}:
            await self.placement.unload(model, doc["canary"])

    async def _pass_stage(self, model: str, compiled: Any, stats: WindowStats) -> None:
        doc = compiled.doc
        judgment = self._judgment(compiled, stats, "pass")
        if compiled.stage + 1 < len(doc["stages"]):
            compiled.set_stage(compiled.stage + 1)
            log.info("canary of %s: stage passed, now %g %%", model, doc["stages"][compiled.stage])
            await self._store(model, doc, stage=compiled.stage, judgment=judgment)
            return
        reason = f"canary {doc['canary']} passed every stage ({', '.join(f'{s:g}' for s in doc['stages'])} %)"
        try:
            await self.swaps.swap(model, doc["canary"], action="promote", actor=ACTOR, reason=reason)
        except ApiError as exc:  # e.g. a swap already in progress: judge again on the next tick
            log.warning("canary of %s: promotion deferred: %s", model, exc.message)
            return
        compiled.status = PROMOTED
        await self._store(model, doc, status=PROMOTED, judgment=judgment, reason=reason)
        if doc["stable"] not in self.policies.versions_in_use(model) | {self.catalog.production(model)}:
            await self.placement.unload(model, doc["stable"])

    async def _store(self, model: str, doc: dict[str, Any], judgment: dict[str, Any], **changes: Any) -> None:
        """Write the policy's new state, unless someone replaced the policy meanwhile."""
        async with self.locks.setdefault(model, asyncio.Lock()):
            config = self.catalog.routing.get(model) or {}
            if config.get("policy") is not doc:
                return
            new_doc = {**doc, **changes, "history": [*doc.get("history", []), judgment]}
            try:
                await self.catalog.set_routing(model, {**config, "policy": new_doc})
            except ApiError as exc:  # the decision stands in memory; the stored stage lags behind
                log.error("canary of %s: state not stored: %s", model, exc.message)
