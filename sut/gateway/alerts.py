"""Emergency rollback: an alert rule per model on the error rate of its production version, which rolls the
model back without a person when it fires.

Rule: ``{"max_error_rate": 0.2, "window_s": 5, "min_requests": 20}``. Every ``interval`` the monitor reads
the gateway's own record of the production version's answers over the last ``window_s`` seconds (never
from before that version became production); with at least ``min_requests`` of them and a 5xx rate above
``max_error_rate``, the alert fires: an ``alert_fired`` audit entry (actor ``alert``, the reason with the
figures), then the same rollback an operator would ask for (``SwapCoordinator.rollback``: back to the
version production had before). A rollback that cannot start yet (a swap still finishing) is tried again
on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sut.errors import ApiError
from sut.gateway.catalog import Catalog
from sut.gateway.policies import PolicyError
from sut.gateway.recent import RecentAnswers
from sut.gateway.swap import SwapCoordinator

log = logging.getLogger("sut.gateway.alerts")

ACTOR = "alert"


def validate_rule(doc: object) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise PolicyError("an alert rule must be a JSON object: {max_error_rate, window_s, min_requests}")
    out: dict[str, Any] = {}
    for field, low, high, default in (
        ("max_error_rate", 0.0, 1.0, None),
        ("window_s", 0.1, 3600.0, 5.0),
        ("min_requests", 1, 1_000_000, 20),
    ):
        value = doc.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise PolicyError(
                f"alert rule: {field!r} must be a number between {low:g} and {high:g}, got {value!r}"
            )
        out[field] = value
    out["min_requests"] = int(out["min_requests"])
    return out


class AlertMonitor:
    def __init__(
        self, catalog: Catalog, recent: RecentAnswers, swaps: SwapCoordinator, interval: float = 0.1
    ) -> None:
        self.catalog = catalog
        self.recent = recent
        self.swaps = swaps
        self.interval = interval
        self._since: dict[str, tuple[str, float]] = {}  # model -> (production version, watched since)
        self.last_fired: dict[str, dict[str, Any]] = {}  # model -> what the last firing saw and did

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for model, config in list(self.catalog.routing.items()):
                rule = config.get("alert")
                if rule:
                    try:
                        await self.check(model, rule)
                    except Exception as exc:  # the monitor must outlive any one failure
                        log.warning("alert of %s: %s: %s", model, type(exc).__name__, exc)

    async def check(self, model: str, rule: dict[str, Any]) -> None:
        production = self.catalog.production(model)
        if production is None:
            return
        now = time.monotonic()
        watched = self._since.get(model)
        if watched is None or watched[0] != production:  # judge a version only on its own answers
            watched = self._since[model] = (production, now)
        stats = self.recent.stats(model, production, since=max(watched[1], now - rule["window_s"]))
        if stats.requests < rule["min_requests"] or stats.error_rate <= rule["max_error_rate"]:
            return
        reason = (
            f"error rate of {model} version {production} was {stats.error_rate:.1%} ({stats.errors} of "
            f"{stats.requests} requests) over the last {rule['window_s']:g} s, "
            f"above {rule['max_error_rate']:.1%}"
        )
        fired = self.last_fired.get(model)
        if fired is None or fired.get("version") != production or fired.get("rolled_back"):
            log.error("alert fired: %s", reason)
            entry = await self.catalog.audit(
                "alert_fired",
                model,
                {"actor": ACTOR, "reason": reason, "version": production, **stats.as_dict()},
            )
            fired = self.last_fired[model] = {"version": production, "at": entry.at, "reason": reason,
                                              "rolled_back": False}  # fmt: skip
        try:
            answer = await self.swaps.rollback(model, actor=ACTOR, reason=reason)
        except ApiError as exc:
            if exc.status == 409 and "in progress" in exc.message:
                return  # a swap is finishing: roll back on the next tick
            log.error("alert on %s: the rollback failed: %s", model, exc.message)
            await self.catalog.audit_best_effort(
                "alert_rollback_failed", model, {"actor": ACTOR, "reason": exc.message, "version": production}
            )
            self._since[model] = (production, time.monotonic())  # judge afresh rather than retry in a loop
            return
        fired.update(rolled_back=True, to_version=answer.get("to_version"))
