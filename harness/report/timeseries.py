"""A run's samples cut into time buckets: latency percentiles, throughput and errors by status over time.

A bucket's percentile obeys the same rule as a whole run's (:func:`harness.slo.percentile`): with too
few successful answers in the bucket it is None, drawn as a gap, never guessed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.observations import Observation
from harness.slo import InsufficientSamples, percentile

MAX_BUCKETS = 150


@dataclass(frozen=True)
class Bucket:
    start_s: float  # from the run's start
    width_s: float
    requests: int
    ok: int
    by_status: Mapping[int, int]  # every status, 2xx included
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.width_s

    @property
    def ok_rps(self) -> float:
        return self.ok / self.width_s


@dataclass(frozen=True)
class Window:
    """A marked stretch of the run (a swap, a rollback, a fault), wall clock."""

    label: str
    start: float
    end: float


def bucket_width(duration_s: float) -> float:
    """1 s, or wider so that a long run has at most :data:`MAX_BUCKETS` buckets (whole seconds)."""
    return float(max(1, math.ceil(duration_s / MAX_BUCKETS)))


def buckets(observations: Iterable[Observation], t0: float, width_s: float | None = None) -> list[Bucket]:
    """Buckets by request start, from ``t0`` (wall clock) to the last request; empty buckets included."""
    items = sorted(observations, key=lambda o: o.started)
    if not items:
        return []
    duration = items[-1].started - t0
    width = width_s or bucket_width(duration)
    groups: dict[int, list[Observation]] = {}
    for o in items:
        groups.setdefault(max(0, int((o.started - t0) // width)), []).append(o)
    out = []
    for index in range(max(groups) + 1):
        members = groups.get(index, [])
        latencies = [o.latency_s for o in members if o.ok]
        out.append(
            Bucket(
                start_s=index * width,
                width_s=width,
                requests=len(members),
                ok=len(latencies),
                by_status=dict(sorted(Counter(o.status for o in members).items())),
                p50_s=_maybe(latencies, 0.50),
                p95_s=_maybe(latencies, 0.95),
                p99_s=_maybe(latencies, 0.99),
            )
        )
    return out


def _maybe(values: Sequence[float], q: float) -> float | None:
    try:
        return percentile(values, q)
    except InsufficientSamples:
        return None


def windows_from_marks(marks: Mapping[str, float]) -> list[Window]:
    """Pairs ``<name>_started`` / ``<name>_ended`` of a World's marks (an open one ends at +inf)."""
    out = []
    for key, start in marks.items():
        if key.endswith("_started"):
            name = key.removesuffix("_started")
            if name == "load":
                continue
            out.append(Window(name, start, marks.get(f"{name}_ended", math.inf)))
    return sorted(out, key=lambda w: w.start)
