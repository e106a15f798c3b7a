"""Judge a run against an environment's SLO table: p50/p95/p99 bounds, an error-rate bound, and the
minimum sample count each percentile needs before it is judged at all.

Latency percentiles are taken over the successful (2xx) answers, nearest-rank (:mod:`harness.slo`);
the error rate is the share of requests that were not 2xx, status 0 (no answer) included. A
percentile with fewer samples than its minimum is *refused*, which fails the verdict: an SLO that
could not be judged is not met. The minimum is never below :func:`harness.slo.min_samples_for`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.observations import Observation
from harness.slo import InsufficientSamples, min_samples_for, percentile

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
_KEYS = {"p50_ms", "p95_ms", "p99_ms", "error_rate", "min_samples"}


@dataclass(frozen=True)
class SloTable:
    """One environment's bounds; a bound left out is not judged."""

    environment: str
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None  # fraction, e.g. 0.01
    min_samples: Mapping[str, int] = field(default_factory=dict)  # "p99" -> 500

    def __post_init__(self) -> None:
        unknown = sorted(set(self.min_samples) - set(QUANTILES))
        bounds = [b for b in (self.p50_ms, self.p95_ms, self.p99_ms) if b is not None]
        problems = []
        if unknown:
            problems.append(f"min_samples for unknown percentile(s) {unknown}")
        if any(b <= 0 for b in bounds):
            problems.append("latency bounds must be > 0 ms")
        if self.error_rate is not None and not 0 <= self.error_rate <= 1:
            problems.append(f"error_rate is a fraction in [0, 1] (got {self.error_rate})")
        if problems:
            raise ValueError(f"invalid SLO table {self.environment!r}: " + "; ".join(problems))

    @classmethod
    def of(cls, environment: str, data: Mapping[str, Any]) -> SloTable:
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ValueError(f"SLO table {environment!r}: unknown key(s) {unknown}; known: {sorted(_KEYS)}")
        return cls(
            environment=environment,
            p50_ms=_num(data.get("p50_ms")),
            p95_ms=_num(data.get("p95_ms")),
            p99_ms=_num(data.get("p99_ms")),
            error_rate=_num(data.get("error_rate")),
            min_samples={k: int(v) for k, v in dict(data.get("min_samples", {})).items()},
        )

    def merged(self, overrides: Mapping[str, Any]) -> SloTable:
        """This table with a profile's own keys on top (``[profiles.X.slo.ENV]``)."""
        data: dict[str, Any] = {k: getattr(self, k) for k in ("p50_ms", "p95_ms", "p99_ms", "error_rate")}
        data = {k: v for k, v in data.items() if v is not None}
        data["min_samples"] = {**self.min_samples, **dict(overrides.get("min_samples", {}))}
        data.update({k: v for k, v in overrides.items() if k != "min_samples"})
        return SloTable.of(self.environment, data)

    def minimum(self, name: str) -> int:
        """Samples ``name`` needs: the table's figure, never below the default rule."""
        return max(self.min_samples.get(name, 0), min_samples_for(QUANTILES[name]))

    def bound_ms(self, name: str) -> float | None:
        return getattr(self, f"{name}_ms")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Check:
    name: str  # "p99", "error_rate"
    bound: float  # ms for a percentile, a fraction for the error rate
    measured: float | None  # None = refused (too few samples)
    samples: int
    needed: int  # samples required to judge
    passed: bool
    message: str


@dataclass(frozen=True)
class SloVerdict:
    environment: str
    checks: tuple[Check, ...]
    requests: int

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def assert_met(self) -> None:
        """Raise AssertionError naming every failed check (percentile, bound, measured, sample size)."""
        if not self.passed:
            raise AssertionError(
                f"SLO {self.environment!r} not met over {self.requests} requests: "
                + "; ".join(c.message for c in self.failures)
            )

    def __str__(self) -> str:
        head = (
            f"SLO {self.environment!r}: {'met' if self.passed else 'NOT met'} over {self.requests} requests"
        )
        return "\n".join([head, *(f"  {'ok  ' if c.passed else 'FAIL'} {c.message}" for c in self.checks)])


def judge(observations: Iterable[Observation], table: SloTable) -> SloVerdict:
    samples = list(observations)
    latencies = [o.latency_s for o in samples if o.ok]
    checks: list[Check] = []
    for name, q in QUANTILES.items():
        bound = table.bound_ms(name)
        if bound is None:
            continue
        needed = table.minimum(name)
        try:
            value_ms = percentile(latencies, q, min_samples=needed) * 1000
        except InsufficientSamples:
            checks.append(
                Check(
                    name,
                    bound,
                    None,
                    len(latencies),
                    needed,
                    False,
                    f"{name} not judged: {len(latencies)} successful samples, at least {needed} needed"
                    f" (bound {bound:g} ms)",
                )
            )
            continue
        passed = value_ms <= bound
        relation = "within" if passed else "exceeds"
        checks.append(
            Check(
                name,
                bound,
                value_ms,
                len(latencies),
                needed,
                passed,
                f"{name} {value_ms:.1f} ms over {len(latencies)} samples {relation} the bound {bound:g} ms",
            )
        )
    if table.error_rate is not None:
        errors = sum(1 for o in samples if not o.ok)
        if not samples:
            checks.append(
                Check(
                    "error_rate",
                    table.error_rate,
                    None,
                    0,
                    1,
                    False,
                    "error rate not judged: no request was recorded",
                )
            )
        else:
            rate = errors / len(samples)
            passed = rate <= table.error_rate
            relation = "within" if passed else "exceeds"
            checks.append(
                Check(
                    "error_rate",
                    table.error_rate,
                    rate,
                    len(samples),
                    1,
                    passed,
                    f"error rate {rate:.2%} ({errors} of {len(samples)} not 2xx) {relation}"
                    f" the bound {table.error_rate:.2%}",
                )
            )
    return SloVerdict(table.environment, tuple(checks), len(samples))
