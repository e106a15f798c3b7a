"""Providers of a model: who may serve it, in priority order, and how their failures count.

A provider is a named upstream: a ``pool`` of our workers (those registered with ``--pool NAME``) or an
``external`` V2 server (a base URL). One of them holds the model's lock at a time (``failover.py``).

Failure conditions are explicit and counted per provider: a connection failure, a timeout, a 5xx, a
429 (quota exhausted) or a 401/403 (the provider refused our credentials). Anything else is not the
provider's fault and never counts: a 2xx resets the consecutive count, a 4xx caused by the client's
input (400, 404, 422, ...) is counted apart as a client error.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sut.protocol import BadRequest

KINDS = ("pool", "external")
CONNECTION, TIMEOUT, SERVER_ERROR, QUOTA, CREDENTIALS = (
    "connection",
    "timeout",
    "server_error",
    "quota",
    "credentials",
)
FAILURE_REASONS = (CONNECTION, TIMEOUT, SERVER_ERROR, QUOTA, CREDENTIALS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def classify(status: int | None, transport_failure: str | None = None) -> str | None:
    """The failure condition an upstream outcome is, or None when it is not the provider's failure.

    ``transport_failure`` is CONNECTION or TIMEOUT when no HTTP answer came back."""
    if transport_failure is not None:
        return transport_failure
    if status is None:
        return CONNECTION
    if status == 429:
        return QUOTA
    if status in (401, 403):
        return CREDENTIALS
    if status == 504:
        return TIMEOUT
    if status >= 500:
        return SERVER_ERROR
    return None


def is_client_error(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and classify(status) is None


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    kind: str  # "pool" | "external"
    pool: str | None = None  # kind "pool": the workers registered with --pool <pool>
    url: str | None = None  # kind "external": the V2 server's base URL
    remote_model: str | None = None  # external: the model's name there (default: the same name)
    remote_version: str | None = None  # external: the version there (default: its default version)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        return f"pool {self.pool}" if self.kind == "pool" else f"external {self.url}"


@dataclass(frozen=True)
class FailoverPolicy:
    threshold: int = 3  # consecutive failures of the lock holder that make the gateway fail over
    hold_s: float = 10.0  # a higher-priority provider must be healthy this long before a failback
    probe_interval_s: float = 1.0  # the health monitor's period
    probe_timeout_s: float = 2.0  # deadline of each probe call (readiness, canary inference)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_config(payload: dict[str, Any]) -> tuple[list[ProviderSpec], FailoverPolicy]:
    """``{"providers": [...], "failure_threshold"?, "hold_s"?, "probe_interval_s"?, "probe_timeout_s"?}``;
    raises BadRequest saying what is wrong."""
    raw = payload.get("providers")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'providers' must be a non-empty list, highest priority first")
    specs = [_parse_provider(item, i) for i, item in enumerate(raw)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise BadRequest(f"provider names must be unique, got {names}")
    defaults = FailoverPolicy()
    policy = FailoverPolicy(
        threshold=_number(payload, "failure_threshold", defaults.threshold, int, minimum=1),
        hold_s=_number(payload, "hold_s", defaults.hold_s, float, minimum=0.0),
        probe_interval_s=_number(payload, "probe_interval_s", defaults.probe_interval_s, float, minimum=0.05),
        probe_timeout_s=_number(payload, "probe_timeout_s", defaults.probe_timeout_s, float, minimum=0.05),
    )
    return specs, policy


def _parse_provider(item: Any, index: int) -> ProviderSpec:
    where = f"providers[{index}]"
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be an object with 'name' and 'pool' or 'url'")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest(f"{where}: 'name' must be a short name (letters, digits, '.', '_', '-')")
    pool, url = item.get("pool"), item.get("url")
    if (pool is None) == (url is None):
        raise BadRequest(f"{where} ({name}): give exactly one of 'pool' (our workers) or 'url' (a V2 server)")
    if pool is not None:
        if not isinstance(pool, str) or not _NAME.match(pool):
            raise BadRequest(f"{where} ({name}): 'pool' must be a pool name")
        return ProviderSpec(name, "pool", pool=pool)
    if not isinstance(url, str):
        raise BadRequest(f"{where} ({name}): 'url' must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadRequest(f"{where} ({name}): 'url' must be an http(s) base URL, got {url!r}")
    remote_model, remote_version = item.get("model"), item.get("version")
    for key, value in (("model", remote_model), ("version", remote_version)):
        if value is not None and (not isinstance(value, str) or not _NAME.match(value)):
            raise BadRequest(f"{where} ({name}): '{key}' must be a name")
    return ProviderSpec(
        name, "external", url=url.rstrip("/"), remote_model=remote_model, remote_version=remote_version
    )


def _number(payload: dict[str, Any], key: str, default: Any, kind: type, minimum: float) -> Any:
    value = payload.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and not isinstance(value, int))
    ):
        raise BadRequest(f"'{key}' must be {'an integer' if kind is int else 'a number'}")
    if value < minimum or value != value or value in (float("inf"), float("-inf")):
        raise BadRequest(f"'{key}' must be a finite number >= {minimum:g}")
    return kind(value)


@dataclass
class ProviderCounters:
    """Per provider; persisted with the lock (they survive a gateway restart)."""

    requests: int = 0
    successes: int = 0
    consecutive_failures: int = 0
    total_failures: int = 0
    client_errors: int = 0  # 4xx the client caused: never failures
    failures: dict[str, int] = field(default_factory=dict)  # by reason
    last_failure: str | None = None
    last_failure_at: float | None = None  # wall clock

    def success(self) -> None:
        self.requests += 1
        self.successes += 1
        self.consecutive_failures = 0

    def failure(self, reason: str, detail: str) -> None:
        self.requests += 1
        self.total_failures += 1
        self.consecutive_failures += 1
        self.failures[reason] = self.failures.get(reason, 0) + 1
        self.last_failure = f"{reason}: {detail}"[:300]
        self.last_failure_at = time.time()

    def client_error(self) -> None:
        self.requests += 1
        self.client_errors += 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProviderCounters:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


@dataclass
class ProviderHealth:
    """What the health monitor last saw of a provider (not persisted: a restarted gateway probes again)."""

    healthy_since: float | None = None  # monotonic; None while it fails (or before the first probe)
    healthy_since_wall: float | None = None
    probes_ok: int = 0
    probes_failed: int = 0
    last_probe: dict[str, Any] | None = None

    @property
    def probed(self) -> bool:
        return self.last_probe is not None

    @property
    def ok(self) -> bool:
        return self.last_probe is not None and bool(self.last_probe.get("ok"))

    def record(self, probe: dict[str, Any]) -> None:
        self.last_probe = probe
        if probe["ok"]:
            self.probes_ok += 1
            if self.healthy_since is None:
                self.healthy_since, self.healthy_since_wall = time.monotonic(), time.time()
        else:
            self.probes_failed += 1
            self.healthy_since = self.healthy_since_wall = None

    def unhealthy(self) -> None:
        """A failed client request also ends a healthy streak (a failback must wait for a new one)."""
        self.healthy_since = self.healthy_since_wall = None

    def healthy_for(self) -> float:
        return 0.0 if self.healthy_since is None else time.monotonic() - self.healthy_since

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.ok,
            "healthy_since": self.healthy_since_wall,
            "healthy_for_s": round(self.healthy_for(), 3),
            "probes_ok": self.probes_ok,
            "probes_failed": self.probes_failed,
            "last_probe": self.last_probe,
        }
