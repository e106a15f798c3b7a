"""Recorded responses: what the services really answered.

Every request a driver or the load generator makes becomes an :class:`Observation`. Times are wall
clock (``time.time()``) so that samples written by the Locust subprocess line up with marks taken
in the test process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    started: float  # wall-clock seconds
    latency_s: float
    status: int  # HTTP status; 0 = no HTTP answer (connection error, timeout on our side)
    model_version: str | None = None
    error: str | None = None  # error body or exception text
    source: str = "driver"  # "driver" | "load"
    request_id: str | None = None
    target: str = ""  # e.g. "POST /v2/models/demo/infer"
    outputs: dict[str, list] | None = None  # a successful answer's outputs (name -> flat data), if recorded
    inputs: dict[str, list] | None = None  # the request's input tensors (name -> flat data), if known
    provider: str | None = None  # the provider the answer names (gateway header X-Provider), if any

    @property
    def ended(self) -> float:
        return self.started + self.latency_s

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def failed(self) -> bool:
        """A server error or no HTTP answer at all."""
        return self.status == 0 or self.status >= 500


class Observations:
    """Thread-safe append-only log with simple queries."""

    def __init__(self) -> None:
        self._items: list[Observation] = []
        self._lock = threading.Lock()

    def add(self, obs: Observation) -> None:
        with self._lock:
            self._items.append(obs)

    def extend(self, items: Iterable[Observation]) -> None:
        with self._lock:
            self._items.extend(items)

    def __iter__(self) -> Iterator[Observation]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def select(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
    ) -> list[Observation]:
        """Observations that *overlap* ``[start, end]`` (a request in flight across a boundary counts)."""
        out = []
        for obs in self:
            if source is not None and obs.source != source:
                continue
            if start is not None and obs.ended < start:
                continue
            if end is not None and obs.started > end:
                continue
            out.append(obs)
        return out
