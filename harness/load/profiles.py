"""Load profiles as data: a TOML file of endpoints, profiles (shape, weights, timeouts) and SLO tables.

::

    [defaults]                      # optional; any profile key
    timeout_s = 10
    think_s = 0.1

    [endpoints.infer]               # "{model}" is replaced by the model a step or the CLI names
    method = "POST"
    path = "/v2/models/{model}/infer"
    body = '{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}]}'
    [endpoints.health]
    path = "/v2/health/ready"

    [profiles.peak]
    shape = "sustained"             # sustained | ramp | burst | spike (keys: see SHAPE_KEYS)
    users = 50
    duration_s = 30
    endpoints = { infer = 90, health = 10 }   # weights; default: every endpoint at its own weight
    [profiles.peak.slo.production]  # optional: this profile's own bounds over the environment's
    p99_ms = 800

    [slo.staging]
    p50_ms = 100
    p95_ms = 400
    p99_ms = 1000
    error_rate = 0.01
    min_samples = { p50 = 20, p95 = 100, p99 = 300 }

``sustained`` may give ``rate`` (requests per second over all users) instead of or with ``users``:
each user then paces itself at ``rate / users`` (Locust's constant throughput) and ``think_s`` is not
used; without ``users`` there is one user per :data:`RATE_PER_USER` requests per second.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load import schedule as shapes
from harness.load.endpoints import Endpoint, check_endpoints
from harness.load.runner import LoadProfile
from harness.slo_check import SloTable

SHAPE_KEYS: dict[str, tuple[set[str], set[str]]] = {  # shape -> (required, optional)
    "sustained": ({"duration_s"}, {"users", "rate", "spawn_rate"}),
    "ramp": ({"from_users", "to_users", "duration_s"}, {"steps", "hold_s"}),
    "burst": ({"users", "every_s", "hold_s", "repeats"}, {"base_users"}),
    "spike": ({"users", "factor", "at_s", "for_s", "duration_s"}, set()),
}
COMMON_KEYS = {"shape", "endpoints", "timeout_s", "think_s", "description", "slo"}
RATE_PER_USER = 5.0  # requests per second one paced user is given when a profile names only a rate


class ProfileError(ValueError):
    """A profile file or a profile in it is not valid; the message names the file and the key."""


@dataclass(frozen=True)
class Profile:
    name: str
    shape: str
    schedule: shapes.Schedule
    endpoints: tuple[Endpoint, ...]  # may hold "{model}"
    timeout_s: float = 10.0
    think_s: float = 0.0
    user_rate: float | None = None  # requests per second per user (paced); None = think_s
    description: str = ""
    slo_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.schedule.end_s

    def load_profile(
        self,
        model: str | None = None,
        *,
        processes: int = 1,
        load_workers: int = 0,
        headers: Mapping[str, str] | None = None,
        infer_body: Mapping[str, Any] | None = None,
    ) -> LoadProfile:
        """The runner's profile: the schedule, and the endpoints with ``{model}`` filled in.

        ``infer_body``: the model's own request (its target's :class:`ModelSpec`), sent by every endpoint
        that POSTs to a V2 ``.../infer`` path instead of the file's body (an example for one model).
        ``headers``: sent with every request (an external target's credentials).
        """
        endpoints = tuple(e.with_model(model) for e in self.endpoints) if model else self.endpoints
        if infer_body is not None:
            endpoints = tuple(
                Endpoint(e.name, e.weight, e.method, e.path, dict(infer_body)) if _is_infer(e) else e
                for e in endpoints
            )
        unresolved = [e.name for e in endpoints if "{model}" in e.path]
        if unresolved:
            raise ProfileError(f"profile {self.name!r}: endpoints {unresolved} need a model name")
        return LoadProfile(
            users=self.schedule.peak_users or 1,
            model=model or "",
            endpoints=endpoints,
            schedule=self.schedule,
            timeout_s=self.timeout_s,
            think_s=self.think_s,
            user_rate=self.user_rate,
            processes=processes,
            load_workers=load_workers,
            headers=dict(headers or {}),
            name=self.name,
        )


def _is_infer(endpoint: Endpoint) -> bool:
    return endpoint.method == "POST" and endpoint.path.rstrip("/").endswith("/infer")


@dataclass(frozen=True)
class ProfileBook:
    """Every profile and SLO table of one TOML file."""

    profiles: Mapping[str, Profile]
    slo: Mapping[str, SloTable]
    source: str = "<string>"

    @classmethod
    def load(cls, path: str | Path) -> ProfileBook:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(f"{path}: {exc}") from None
        return cls.of(data, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> ProfileBook:
        try:
            return cls.of(tomllib.loads(text), source=source)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{source}: {exc}") from None

    @classmethod
    def of(cls, data: Mapping[str, Any], source: str = "<string>") -> ProfileBook:
        unknown = sorted(set(data) - {"defaults", "endpoints", "profiles", "slo"})
        if unknown:
            raise ProfileError(f"{source}: unknown table(s) {unknown}")
        try:
            endpoints = {name: Endpoint.of(name, spec) for name, spec in data.get("endpoints", {}).items()}
            slo = {env: SloTable.of(env, spec) for env, spec in data.get("slo", {}).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise ProfileError(f"{source}: {exc}") from None
        defaults = dict(data.get("defaults", {}))
        profiles = {}
        for name, spec in data.get("profiles", {}).items():
            try:
                profiles[name] = _profile(name, {**defaults, **spec}, endpoints)
            except (ValueError, KeyError, TypeError) as exc:
                raise ProfileError(f"{source}: profile {name!r}: {exc}") from None
        for profile in profiles.values():
            missing = sorted(set(profile.slo_overrides) - set(slo))
            if missing:
                raise ProfileError(
                    f"{source}: profile {profile.name!r} overrides SLO of unknown env {missing}"
                )
        return cls(profiles, slo, source)

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise ProfileError(f"no profile {name!r} in {self.source}; known: {sorted(self.profiles)}")
        return self.profiles[name]

    def slo_for(self, environment: str, profile: str | None = None) -> SloTable:
        """The environment's table, with the profile's own overrides on top."""
        if environment not in self.slo:
            raise ProfileError(
                f"no SLO table [slo.{environment}] in {self.source}; known: {sorted(self.slo)}"
            )
        table = self.slo[environment]
        overrides = self.profile(profile).slo_overrides.get(environment) if profile else None
        return table.merged(overrides) if overrides else table


def _profile(name: str, spec: Mapping[str, Any], endpoints: Mapping[str, Endpoint]) -> Profile:
    shape = spec.get("shape")
    if shape not in SHAPE_KEYS:
        raise ValueError(f"shape must be one of {sorted(SHAPE_KEYS)} (got {shape!r})")
    required, optional = SHAPE_KEYS[shape]
    missing = sorted(required - set(spec))
    unknown = sorted(set(spec) - required - optional - COMMON_KEYS)
    if missing or unknown:
        raise ValueError(f"{shape} profile: missing {missing}, unknown {unknown}".replace(", unknown []", ""))
    user_rate = None
    if shape == "sustained":
        if "users" not in spec and "rate" not in spec:
            raise ValueError("a sustained profile needs users, rate, or both")
        rate = float(spec["rate"]) if "rate" in spec else None
        users = int(spec["users"]) if "users" in spec else max(1, math.ceil(rate / RATE_PER_USER))  # type: ignore[operator]
        schedule = shapes.sustained(users, float(spec["duration_s"]), spec.get("spawn_rate"))
        user_rate = None if rate is None else rate / users
    elif shape == "ramp":
        schedule = shapes.ramp(
            int(spec["from_users"]), int(spec["to_users"]), float(spec["duration_s"]),
            int(spec.get("steps", 0)), float(spec.get("hold_s", 0.0)),
        )  # fmt: skip
    elif shape == "burst":
        schedule = shapes.burst(
            int(spec["users"]), float(spec["every_s"]), float(spec["hold_s"]), int(spec["repeats"]),
            int(spec.get("base_users", 0)),
        )  # fmt: skip
    else:
        schedule = shapes.spike(
            int(spec["users"]), float(spec["factor"]), float(spec["at_s"]), float(spec["for_s"]),
            float(spec["duration_s"]),
        )  # fmt: skip
    return Profile(
        name=name,
        shape=shape,
        schedule=schedule,
        endpoints=_weighted(spec.get("endpoints"), endpoints),
        timeout_s=float(spec.get("timeout_s", 10.0)),
        think_s=float(spec.get("think_s", 0.0)),
        user_rate=user_rate,
        description=str(spec.get("description", "")),
        slo_overrides=dict(spec.get("slo", {})),
    )


def _weighted(weights: Mapping[str, int] | None, endpoints: Mapping[str, Endpoint]) -> tuple[Endpoint, ...]:
    if weights is None:
        return check_endpoints(endpoints.values())
    unknown = sorted(set(weights) - set(endpoints))
    if unknown:
        raise ValueError(f"unknown endpoint(s) {unknown}; defined: {sorted(endpoints)}")
    chosen = []
    for name, weight in weights.items():
        base = endpoints[name]
        chosen.append(Endpoint(base.name, int(weight), base.method, base.path, base.body))
    return check_endpoints(e for e in chosen if e.weight > 0)
