"""A model's provider lock: its providers in priority order, the one holding the lock, what is known
about each, and the document the lock is stored as in the catalog (see :mod:`sut.gateway.failover`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sut.gateway.failover_audit import iso_time
from sut.gateway.providers import FailoverPolicy, ProviderCounters, ProviderHealth, ProviderSpec


@dataclass
class ModelLock:
    """A model's providers, the one holding the lock, and what is known about each."""

    model: str
    providers: list[ProviderSpec]
    policy: FailoverPolicy
    active: str
    since: float = field(default_factory=time.time)  # wall clock of the last acquire/switch
    switches: int = 0
    counters: dict[str, ProviderCounters] = field(default_factory=dict)
    health: dict[str, ProviderHealth] = field(default_factory=dict)
    canaries: dict[str, bytes] = field(default_factory=dict)  # provider -> canary request body
    probing: bool = False
    next_probe: float = 0.0  # monotonic
    blocked_reported: bool = False  # "no provider to fail over to" logged once per episode

    def __post_init__(self) -> None:
        for spec in self.providers:
            self.counters.setdefault(spec.name, ProviderCounters())
            self.health.setdefault(spec.name, ProviderHealth())

    def spec(self, name: str) -> ProviderSpec:
        for spec in self.providers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def rank(self, name: str) -> int:
        return [s.name for s in self.providers].index(name)

    def counters_now(self) -> dict[str, dict[str, Any]]:
        return {name: c.as_dict() for name, c in self.counters.items()}

    def document(self) -> dict[str, Any]:
        return {
            "providers": [s.as_dict() for s in self.providers],
            "policy": self.policy.as_dict(),
            "lock": {"active": self.active, "since": self.since, "switches": self.switches},
            "counters": self.counters_now(),
        }

    @classmethod
    def from_document(cls, model: str, doc: dict[str, Any]) -> ModelLock:
        providers = [ProviderSpec(**p) for p in doc["providers"]]
        lock = doc["lock"]
        restored = cls(
            model,
            providers,
            FailoverPolicy(**doc["policy"]),
            active=str(lock["active"]),
            since=float(lock["since"]),
            switches=int(lock["switches"]),
            counters={k: ProviderCounters.from_dict(v) for k, v in doc.get("counters", {}).items()},
        )
        restored.spec(restored.active)  # KeyError: a document naming no provider of its own
        return restored

    def status(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "lock": {
                "active": self.active,
                "since": self.since,
                "since_at": iso_time(self.since),
                "switches": self.switches,
            },
            "policy": self.policy.as_dict(),
            "providers": [
                {
                    **spec.as_dict(),
                    "priority": rank,
                    "active": spec.name == self.active,
                    "counters": self.counters[spec.name].as_dict(),
                    "health": self.health[spec.name].as_dict(),
                }
                for rank, spec in enumerate(self.providers)
            ],
        }
