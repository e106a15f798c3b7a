"""Latency baselines: save a run's per-scenario samples, compare a later run against them.

A regression is reported only when **both** hold:

- the effect is larger than stated: the median latency is above the *slowest* baseline run's median
  by at least ``min_increase`` (a fraction, 0.20 = +20 %) *and* by at least ``min_increase_ms`` (so
  that a few microseconds on a 1 ms service is no regression). With one baseline run that is its
  median; with several, the bar rises with their spread: on a shared machine whole runs differ by
  tens of percent while nothing changed, a variation no test on the samples of one run can see;
- it is statistically significant: a one-sided Mann-Whitney U test (current slower than baseline,
  ``scipy.stats.mannwhitneyu``) gives p below ``alpha``.

Mann-Whitney alone flags any consistent shift once there are thousands of samples; the effect gate
alone flags noise on small samples. Every figure behind the decision is kept in :class:`Comparison`.

Recording a scenario again *adds* a run to its entry (``--save-baseline`` run a few times builds a
baseline that knows its spread). The file is JSON: ``{"version": 1, "scenarios": {key: {"latencies_s":
[...], "run_medians_s": [...], "summary": {...}, ...}}}``, with at most :data:`MAX_SAMPLES` pooled
latencies per scenario (a seeded random subsample beyond that).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.observations import Observation
from harness.slo import LatencySummary

MAX_SAMPLES = 20_000
MIN_SAMPLES = 20  # fewer on either side: no comparison is made (refused, like a percentile)
#: +50 % over the slowest baseline run. Measured on this project's shared 2-core machine: with a baseline
#: of 3 runs, 2 of 5 later runs of the unchanged reference cluster were 24-25 % slower than its slowest
#: run (medians ranged 11-26 ms), so a 20 % bar cried wolf there; a quiet machine can state less.
DEFAULT_MIN_INCREASE = 0.50
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One scenario's baseline: successful latencies (seconds) of one or more runs, and their labels."""

    latencies_s: tuple[float, ...]  # pooled over the runs
    taken_at: float = 0.0  # the latest run's time
    labels: Mapping[str, str] = field(default_factory=dict)  # feature, scenario, target, profile
    run_medians_s: tuple[float, ...] = ()  # one per recorded run

    @classmethod
    def of(cls, observations: Iterable[Observation], labels: Mapping[str, str] | None = None) -> Entry:
        latencies = [o.latency_s for o in observations if o.ok]
        medians = (statistics.median(latencies),) if latencies else ()
        return cls(_capped(latencies), time.time(), dict(labels or {}), medians)

    def plus(self, run: Entry) -> Entry:
        """This baseline with one more run (pooled, capped)."""
        return Entry(
            _capped([*self.latencies_s, *run.latencies_s]),
            run.taken_at,
            {**self.labels, **run.labels},
            (*self.run_medians_s, *run.run_medians_s),
        )

    @property
    def spread(self) -> float:
        """Slowest run median / fastest - 1 (0 with fewer than two runs)."""
        medians = [m for m in self.run_medians_s if m > 0]
        return max(medians) / min(medians) - 1 if len(medians) >= 2 else 0.0


def _capped(latencies: Sequence[float]) -> tuple[float, ...]:
    if len(latencies) > MAX_SAMPLES:
        return tuple(random.Random(0).sample(list(latencies), MAX_SAMPLES))
    return tuple(latencies)


class BaselineFile:
    """Per-scenario entries in one JSON file; :meth:`save` writes atomically."""

    def __init__(self, path: str | Path, entries: Mapping[str, Entry] | None = None) -> None:
        self.path = Path(path)
        self.entries: dict[str, Entry] = dict(entries or {})

    @classmethod
    def load(cls, path: str | Path) -> BaselineFile:
        path = Path(path)
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: baseline format {data.get('version')!r}, expected {FORMAT_VERSION}")
        entries = {
            key: Entry(
                tuple(float(v) for v in e["latencies_s"]),
                float(e.get("taken_at", 0)),
                e.get("labels", {}),
                tuple(float(v) for v in e.get("run_medians_s", ())),
            )
            for key, e in data.get("scenarios", {}).items()
        }
        return cls(path, entries)

    def record(self, key: str, run: Entry, *, replace: bool = False) -> Entry:
        """Add ``run`` to ``key``'s baseline (or start it; ``replace`` starts it afresh)."""
        current = self.entries.get(key)
        self.entries[key] = run if current is None or replace else current.plus(run)
        return self.entries[key]

    def save(self) -> Path:
        scenarios: dict[str, Any] = {}
        for key, entry in sorted(self.entries.items()):
            summary = LatencySummary.of_values(entry.latencies_s)
            scenarios[key] = {
                "taken_at": entry.taken_at,
                "labels": dict(entry.labels),
                "summary": {k: v for k, v in asdict(summary).items() if k != "missing"},
                "run_medians_s": list(entry.run_medians_s),
                "latencies_s": [round(v, 7) for v in entry.latencies_s],
            }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"version": FORMAT_VERSION, "scenarios": scenarios}), encoding="utf-8")
        tmp.replace(self.path)
        return self.path

    def get(self, key: str) -> Entry:
        if key not in self.entries:
            raise KeyError(f"no baseline for {key!r} in {self.path}; it has {sorted(self.entries)}")
        return self.entries[key]


@dataclass(frozen=True)
class Comparison:
    key: str
    baseline_n: int
    current_n: int
    baseline_median_s: float
    current_median_s: float
    baseline_p95_s: float | None
    current_p95_s: float | None
    increase: float  # current median / the slowest baseline run's median - 1
    u_statistic: float
    p_value: float  # one-sided: current > baseline
    superiority: float  # P(current sample > baseline sample): U / (n1 * n2), 0.5 = no difference
    min_increase: float
    min_increase_ms: float
    alpha: float
    baseline_runs: int = 1
    reference_median_s: float = 0.0  # the slowest baseline run's median: what ``increase`` is over

    @property
    def large_enough(self) -> bool:
        delta_ms = (self.current_median_s - self.reference_median_s) * 1000
        return self.increase >= self.min_increase and delta_ms >= self.min_increase_ms

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def regressed(self) -> bool:
        return self.large_enough and self.significant

    def __str__(self) -> str:
        verdict = "REGRESSION" if self.regressed else "no regression"
        return (
            f"{self.key}: {verdict}: median {self.baseline_median_s * 1000:.2f} ms (slowest of "
            f"{self.baseline_runs} baseline run(s) {self.reference_median_s * 1000:.2f} ms) -> "
            f"{self.current_median_s * 1000:.2f} ms ({self.increase:+.1%} over the slowest run, effect needed"
            f" >= {self.min_increase:.0%} and >= {self.min_increase_ms:g} ms: "
            f"{'yes' if self.large_enough else 'no'}), p95 {_ms(self.baseline_p95_s)} -> "
            f"{_ms(self.current_p95_s)}; Mann-Whitney U = {self.u_statistic:.0f},"
            f" one-sided p = {self.p_value:.3g} (alpha {self.alpha:g}: "
            f"{'significant' if self.significant else 'not significant'}), P(current > baseline) ="
            f" {self.superiority:.3f}; n = {self.baseline_n} baseline, {self.current_n} current"
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.2f} ms"


def compare(
    key: str,
    baseline: Sequence[float] | Entry,
    current: Sequence[float],
    *,
    min_increase: float = DEFAULT_MIN_INCREASE,
    min_increase_ms: float = 1.0,
    alpha: float = 0.01,
) -> Comparison:
    """Compare latency samples (seconds) with a baseline (an :class:`Entry`, or bare samples of one run);
    :class:`ValueError` below :data:`MIN_SAMPLES` on a side."""
    entry = baseline if isinstance(baseline, Entry) else Entry(tuple(baseline))
    base = entry.latencies_s
    if len(base) < MIN_SAMPLES or len(current) < MIN_SAMPLES:
        raise ValueError(
            f"{key}: refusing to compare {len(current)} current with {len(base)} baseline samples:"
            f" at least {MIN_SAMPLES} needed on each side"
        )
    from scipy.stats import mannwhitneyu  # imported when used: scipy.stats costs half a second at start-up

    result = mannwhitneyu(current, base, alternative="greater")
    base_median, cur_median = statistics.median(base), statistics.median(current)
    reference = max(entry.run_medians_s) if entry.run_medians_s else base_median
    return Comparison(
        key=key,
        baseline_n=len(base),
        current_n=len(current),
        baseline_median_s=base_median,
        current_median_s=cur_median,
        baseline_p95_s=LatencySummary.of_values(base).p95,
        current_p95_s=LatencySummary.of_values(current).p95,
        increase=cur_median / reference - 1 if reference > 0 else float("inf"),
        u_statistic=float(result.statistic),
        p_value=float(result.pvalue),
        superiority=float(result.statistic) / (len(current) * len(base)),
        min_increase=min_increase,
        min_increase_ms=min_increase_ms,
        alpha=alpha,
        baseline_runs=max(1, len(entry.run_medians_s)),
        reference_median_s=reference,
    )
