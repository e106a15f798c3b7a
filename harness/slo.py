"""SLO statistics from raw samples: percentiles that refuse to guess, error counts, time windows.

Percentiles use the **nearest-rank** method: ``p(q)`` is the smallest observed value with at least
``q`` of the samples at or below it (the ``ceil(q * n)``-th smallest). It always returns a latency that
really happened, never an interpolation. A percentile is refused below a minimum sample count: by
default enough samples that at least one lies *above* the percentile, ``ceil(1 / (1 - q))`` (p50 → 2,
p95 → 20, p99 → 100); with fewer, "p99" would just be the maximum of a handful of requests.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.observations import Observation

_EPS = 1e-9  # absorbs binary float error: 1 / (1 - 0.99) is 100.00000000000001, 0.29 * 100 is 28.999...


class InsufficientSamples(ValueError):
    """Too few samples to report a statistic (a percentile, or anything from zero samples) honestly."""

    def __init__(self, stat: str, count: int, minimum: int) -> None:
        self.stat, self.count, self.minimum = stat, count, minimum
        why = " so that one lies above it" if stat.startswith("p") else ""
        super().__init__(f"refusing to report {stat} from {count} sample(s): at least {minimum} needed{why}")


def _label(q: float) -> str:
    return f"p{q * 100:g}"


def _check_q(q: float) -> None:
    if not 0 < q < 1:
        raise ValueError(f"q is a fraction strictly between 0 and 1 (0.99 for p99), got {q!r}")


def min_samples_for(q: float) -> int:
    """The default minimum: the smallest count that leaves at least one sample above the ``q`` percentile."""
    _check_q(q)
    return max(1, math.ceil(1 / (1 - q) - _EPS))


def percentile(values: Sequence[float], q: float, *, min_samples: int | None = None) -> float:
    """Nearest-rank ``q`` percentile, ``q`` in (0, 1); :class:`InsufficientSamples` below the minimum."""
    _check_q(q)
    minimum = min_samples_for(q) if min_samples is None else max(1, min_samples)
    if len(values) < minimum:
        raise InsufficientSamples(_label(q), len(values), minimum)
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - _EPS))
    return ordered[rank - 1]


_QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class LatencySummary:
    """Latency statistics in seconds; a percentile is None when refused, with the reason in ``missing``."""

    count: int
    avg: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    # why a statistic is None, e.g. {"p99": "refusing to report p99 from 40 sample(s): ..."}
    missing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, observations: Iterable[Observation], *, ok_only: bool = False) -> LatencySummary:
        """Summarise the latencies of ``observations`` (only 2xx answers when ``ok_only``)."""
        latencies = [o.latency_s for o in observations if o.ok or not ok_only]
        return cls.of_values(latencies)

    @classmethod
    def of_values(cls, latencies: Sequence[float]) -> LatencySummary:
        missing: dict[str, str] = {}
        quantiles: dict[str, float | None] = {}
        for name, q in _QUANTILES.items():
            try:
                quantiles[name] = percentile(latencies, q)
            except InsufficientSamples as refused:
                quantiles[name] = None
                missing[name] = str(refused)
        if not latencies:
            missing["avg"] = missing["max"] = str(InsufficientSamples("avg/max", 0, 1))
        return cls(
            count=len(latencies),
            avg=sum(latencies) / len(latencies) if latencies else None,
            p50=quantiles["p50"],
            p95=quantiles["p95"],
            p99=quantiles["p99"],
            max=max(latencies) if latencies else None,
            missing=missing,
        )

    def require(self, name: str) -> float:
        """The statistic ``name`` (avg, p50, p95, p99, max), or an error saying why there is none."""
        if name not in ("avg", "max", *_QUANTILES):
            raise ValueError(f"no statistic {name!r}; known: avg, max, {', '.join(_QUANTILES)}")
        value = getattr(self, name)
        if value is None:
            minimum = min_samples_for(_QUANTILES[name]) if name in _QUANTILES else 1
            raise InsufficientSamples(name, self.count, minimum)
        return value

    def __str__(self) -> str:
        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v * 1000:.1f} ms"

        return (
            f"{self.count} samples: avg {ms(self.avg)}, p50 {ms(self.p50)}, p95 {ms(self.p95)},"
            f" p99 {ms(self.p99)}, max {ms(self.max)}"
        )


def errors_by_status(observations: Iterable[Observation]) -> dict[int, int]:
    """How many answers were not 2xx, by status; 0 = no HTTP answer (connection error, client timeout)."""
    return dict(sorted(Counter(o.status for o in observations if not o.ok).items()))


def status_counts(observations: Iterable[Observation]) -> dict[int, int]:
    """How many answers of each status (2xx included)."""
    return dict(sorted(Counter(o.status for o in observations).items()))


def answers_by_version(observations: Iterable[Observation]) -> dict[str | None, int]:
    """How many 2xx answers each model version gave (e.g. "both versions answered during the swap")."""
    return dict(Counter(o.model_version for o in observations if o.ok))


def client_timeouts(observations: Iterable[Observation]) -> int:
    """Requests that got no answer within the client's deadline (status 0 with a timeout error)."""
    return sum(1 for o in observations if o.status == 0 and _is_timeout(o.error or ""))


def _is_timeout(error: str) -> bool:
    text = error.lower()
    return "timed out" in text or "timeout" in text
