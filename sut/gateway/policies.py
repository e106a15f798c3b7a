"""Routing policies per model: which version answers a request that names none.

A request whose path names a version always gets that version. Otherwise the model's policy decides:

- ``weighted``  ``{"weights": {"1": 90, "2": 10}}``: a split between versions (A/B);
- ``canary``    ``{"stable", "canary", "stages": [5, 10, 25, 50, 100], ...}``: the canary's share is the
  current stage's percentage; :mod:`sut.gateway.canary` moves the stage, rolls back or promotes. With
  ``"graduated": {"reduced_share", "persist_seconds"}`` a breach first reduces the canary's share
  (status ``reduced``) and rolls back only if the breach persists;
- ``shadow``    ``{"primary"?, "shadow", "tolerance"}``: the primary answers, the shadow gets a copy
  (:mod:`sut.gateway.shadow`);
- ``time``      ``{"timezone", "rules": [{"days", "from", "to", "version"}], "default"?}``: the first rule
  matching the gateway's clock in that time zone, else ``default``, else production.

Without a policy (or once a canary finished) the ``production`` alias answers. Splits are *smooth weighted
round robin* (as nginx does it), not random draws: over any run of requests each version's share is within
one request of its weight, so an operator (or a test) sees the split it asked for, not sampling noise.

A model's routing configuration is one JSON document in the catalog (``catalog.routing[model]``:
``{"policy": {...}, "alert": {...}, "pinned": [...]}``), so it survives a gateway restart and a catalog
recovery. The policy document keeps its own state (a canary's stage, status and judgments).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sut.errors import ApiError
from sut.gateway.catalog import Catalog
from sut.gateway.clock import GatewayClock

KINDS = ("weighted", "canary", "shadow", "time")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^(\d{2}):(\d{2})$")
# canary judgments by default (a rollout may give its own)
CANARY_DEFAULTS = {"stage_seconds": 5.0, "max_error_rate": 0.01, "max_p99_ms": 500.0, "min_requests": 30}
RUNNING, REDUCED, PROMOTED, ROLLED_BACK = "running", "reduced", "promoted", "rolled_back"
#: statuses in which both the stable version and the canary answer
LIVE = (RUNNING, REDUCED)


class PolicyError(ApiError):
    status = 400


@dataclass(frozen=True)
class Choice:
    version: str
    shadow: str | None = None  # a version that gets a copy of the request (its answer is never returned)


class SmoothWeighted:
    """Smooth weighted round robin: deterministic, interleaved, exact shares over any window."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = {v: w for v, w in weights.items() if w > 0}
        self.total = sum(self.weights.values())
        self.current = dict.fromkeys(self.weights, 0.0)

    def pick(self) -> str:
        best = None
        for version, weight in self.weights.items():
            self.current[version] += weight
            if best is None or self.current[version] > self.current[best]:
                best = version
        assert best is not None
        self.current[best] -= self.total
        return best


# -- validation: a policy document as sent to the admin API, completed and checked ----------------------


def validate(doc: object, catalog: Catalog, model: str) -> dict[str, Any]:
    """The policy, checked against the model's versions, with defaults and initial state filled in."""
    if not isinstance(doc, dict):
        raise PolicyError("a routing policy must be a JSON object with a 'kind'")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise PolicyError(f"unknown policy kind {kind!r}: use one of {', '.join(KINDS)}")
    entry = catalog.get_model(model)
    production = catalog.production(model)

    def version(value: object, field: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or value not in entry.versions:
            raise PolicyError(f"{kind} policy: {field} {value!r} is not a version of model {model!r}")
        return value

    def number(field: str, low: float, high: float | None = None, default: float | None = None) -> float:
        value = doc.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(f"{kind} policy: {field!r} must be a number")
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise PolicyError(f"{kind} policy: {field!r} must be {bound}, got {value}")
        return float(value)

    if kind == "weighted":
        weights = doc.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise PolicyError(
                "weighted policy: 'weights' must map versions to weights, e.g. {'1': 90, '2': 10}"
            )
        checked = {}
        for v, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
                raise PolicyError(f"weighted policy: the weight of version {v!r} must be a number >= 0")
            checked[version(v, "version")] = float(w)
        if sum(checked.values()) <= 0:
            raise PolicyError("weighted policy: at least one weight must be positive")
        return {"kind": kind, "weights": checked}
    if kind == "canary":
        stable = version(doc.get("stable", production), "stable")
        canary = version(doc.get("canary"), "canary")
        if canary == stable:
            raise PolicyError(f"canary policy: the canary and the stable version are both {canary!r}")
        stages = doc.get("stages", [5, 10, 25, 50, 100])
        if (
            not isinstance(stages, list)
            or not stages
            or any(isinstance(p, bool) or not isinstance(p, int | float) for p in stages)
            or any(not 0 < p <= 100 for p in stages)
            or any(b <= a for a, b in itertools.pairwise(stages))
            or stages[-1] != 100
        ):
            raise PolicyError(
                f"canary policy: 'stages' must be increasing percentages ending at 100, got {stages}"
            )
        return {
            "kind": kind,
            "stable": stable,
            "canary": canary,
            "stages": [float(p) for p in stages],
            "graduated": _graduated(doc.get("graduated"), float(stages[0])),
            "stage_seconds": number("stage_seconds", 0.1, None, CANARY_DEFAULTS["stage_seconds"]),
            "max_error_rate": number("max_error_rate", 0.0, 1.0, CANARY_DEFAULTS["max_error_rate"]),
            "max_p99_ms": number("max_p99_ms", 0.001, None, CANARY_DEFAULTS["max_p99_ms"]),
            "min_requests": int(number("min_requests", 1, None, CANARY_DEFAULTS["min_requests"])),
            # optional: the canary's p99 may exceed the stable version's (same window) by at most this much
            "max_p99_over_stable_ms": (
                None if doc.get("max_p99_over_stable_ms") is None else number("max_p99_over_stable_ms", 0.0)
            ),
            "status": RUNNING,
            "stage": 0,
            "history": [],
            "reason": None,
        }
    if kind == "shadow":
        primary = doc.get("primary")
        shadow = version(doc.get("shadow"), "shadow")
        checked_primary = None if primary is None else version(primary, "primary")
        if shadow == (checked_primary or production):
            raise PolicyError(f"shadow policy: the shadow version {shadow!r} is also the primary")
        return {
            "kind": kind,
            "primary": checked_primary,  # None: whatever production is
            "shadow": shadow,
            "tolerance": number("tolerance", 0.0, None, 1e-6),
        }
    # time
    zone = doc.get("timezone")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(
            f"time policy: unknown time zone {zone!r} (use an IANA name, e.g. Europe/Paris)"
        ) from None
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        raise PolicyError("time policy: 'rules' must be a non-empty list")
    checked_rules = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise PolicyError(f"time policy: rule {i} must be an object")
        days = rule.get("days", list(DAYS))
        if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
            raise PolicyError(f"time policy: rule {i}: 'days' must be a list of {', '.join(DAYS)}")
        start, end = (
            _minutes(rule.get("from", "00:00"), i, "from"),
            _minutes(rule.get("to", "24:00"), i, "to"),
        )
        if start == end:
            raise PolicyError(f"time policy: rule {i}: 'from' and 'to' are equal")
        checked_rules.append(
            {
                "days": [d for d in DAYS if d in days],
                "from": rule.get("from", "00:00"),
                "to": rule.get("to", "24:00"),
                "version": version(rule.get("version"), f"rule {i} version"),
            }
        )
    default = doc.get("default")
    return {
        "kind": kind,
        "timezone": str(zone),
        "rules": checked_rules,
        "default": None if default is None else version(default, "default"),
    }


def _graduated(raw: object, first_stage: float) -> dict[str, float] | None:
    """A canary's graduated rollback: the share a breach reduces the canary to (below the first stage, so
    every stage has room to reduce), and how long the breach must persist at that share before a rollback."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PolicyError("canary policy: 'graduated' must be {'reduced_share': %, 'persist_seconds': s}")
    share = raw.get("reduced_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < first_stage:
        raise PolicyError(
            f"canary policy: graduated 'reduced_share' must be a percentage above 0 and below the first "
            f"stage ({first_stage:g} %), got {share!r}"
        )
    persist = raw.get("persist_seconds")
    if isinstance(persist, bool) or not isinstance(persist, int | float) or persist < 0.1:
        raise PolicyError(f"canary policy: graduated 'persist_seconds' must be >= 0.1, got {persist!r}")
    return {"reduced_share": float(share), "persist_seconds": float(persist)}


def _minutes(text: object, index: int, field: str) -> int:
    match = _HHMM.match(str(text))
    if not match or int(match.group(1)) > 24 or int(match.group(2)) > 59:
        raise PolicyError(
            f"time policy: rule {index}: {field!r} must be HH:MM (00:00 to 24:00), got {text!r}"
        )
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 24 * 60:
        raise PolicyError(f"time policy: rule {index}: {field!r} is after 24:00")
    return minutes


def versions_of(policy: dict[str, Any] | None, production: str | None) -> set[str]:
    """The versions a policy may route to (or copy to) right now: they must stay loaded."""
    if not policy:
        return set()
    kind = policy["kind"]
    if kind == "weighted":
        return {v for v, w in policy["weights"].items() if w > 0}
    if kind == "canary":
        status = policy.get("status", RUNNING)
        if status in LIVE:
            return {policy["stable"], policy["canary"]}
        return {policy["stable"]} if status == ROLLED_BACK else set()
    if kind == "shadow":
        return {policy["primary"] or production, policy["shadow"]} - {None}  # type: ignore[return-value]
    return {r["version"] for r in policy["rules"]} | ({policy["default"]} if policy.get("default") else set())


# -- the decision on the hot path ------------------------------------------------------------------------


class _Compiled:
    """A policy document made ready for per-request decisions (kept while the document is the same)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.kind = doc["kind"]
        self.split: SmoothWeighted | None = None
        self.zone = ZoneInfo(doc["timezone"]) if self.kind == "time" else None
        if self.kind == "weighted":
            self.split = SmoothWeighted(doc["weights"])
        if self.kind == "canary":
            self.status = doc.get("status", RUNNING)
            self.set_stage(int(doc.get("stage", 0)))
            if self.status == REDUCED:
                self.set_share(doc["graduated"]["reduced_share"])

    def set_stage(self, stage: int) -> None:
        """A canary's stage: its share of the traffic (takes effect with the next request)."""
        self.stage = stage
        self.set_share(self.doc["stages"][stage])

    def set_share(self, share: float) -> None:
        """The canary's share in percent: its stage's, or a graduated rollback's reduced one."""
        self.share = share
        self.split = SmoothWeighted({self.doc["stable"]: 100.0 - share, self.doc["canary"]: share})

    def choose(self, production: str | None, now: datetime) -> Choice | None:
        if self.kind == "weighted":
            assert self.split is not None
            return Choice(self.split.pick())
        if self.kind == "canary":
            if self.status in LIVE:
                assert self.split is not None
                return Choice(self.split.pick())
            return Choice(self.doc["stable"]) if self.status == ROLLED_BACK else None
        if self.kind == "shadow":
            primary = self.doc["primary"] or production
            return None if primary is None else Choice(primary, self.doc["shadow"])
        local = now.astimezone(self.zone)
        day, minute = DAYS[local.weekday()], local.hour * 60 + local.minute
        for rule in self.doc["rules"]:
            if _matches(rule, day, DAYS[(local.weekday() - 1) % 7], minute):
                return Choice(rule["version"])
        return Choice(self.doc["default"]) if self.doc.get("default") else None


def _matches(rule: dict[str, Any], day: str, yesterday: str, minute: int) -> bool:
    """``from`` <= now < ``to`` on one of the rule's days; a rule whose ``to`` is before its ``from`` runs
    past midnight (its early-morning part belongs to the day before)."""
    start, end = _minutes(rule["from"], 0, "from"), _minutes(rule["to"], 0, "to")
    if start < end:
        return day in rule["days"] and start <= minute < end
    return (day in rule["days"] and minute >= start) or (yesterday in rule["days"] and minute < end)


class PolicyTable:
    """Reads each model's policy from the catalog's in-memory mirror and decides per request."""

    def __init__(self, catalog: Catalog, clock: GatewayClock) -> None:
        self.catalog = catalog
        self.clock = clock
        self._compiled: dict[str, _Compiled] = {}

    def policy(self, model: str) -> dict[str, Any] | None:
        return (self.catalog.routing.get(model) or {}).get("policy")

    def compiled(self, model: str) -> _Compiled | None:
        """The live decision object of the model's policy (the canary controller moves its stage)."""
        doc = self.policy(model)
        if doc is None:
            self._compiled.pop(model, None)
            return None
        current = self._compiled.get(model)
        if current is None or current.doc is not doc:  # a new document: a new policy (or its new state)
            current = self._compiled[model] = _Compiled(doc)
        return current

    def choose(self, model: str, version: str | None) -> Choice:
        """The version that answers (and the shadow that gets a copy). No await: callers rely on that."""
        if version is not None:  # an explicit version always wins
            return Choice(self.catalog.resolve(model, version))
        compiled = self.compiled(model)
        choice = compiled.choose(self.catalog.production(model), self.clock.now()) if compiled else None
        return choice or Choice(self.catalog.resolve(model, None))

    def versions_in_use(self, model: str) -> set[str]:
        """Versions the workers must keep loaded for this model besides production (policy and pins)."""
        entry = self.catalog.models.get(model)
        config = self.catalog.routing.get(model) or {}
        policy = dict(config.get("policy") or {})
        compiled = self.compiled(model)
        if compiled is not None and compiled.kind == "canary":
            policy["status"] = compiled.status  # live: a rollback takes effect before it is stored
        production = entry.aliases.get("production") if entry else None
        return versions_of(policy or None, production) | set(config.get("pinned", []))
