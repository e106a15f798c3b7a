"""Latency baselines: save a run's per-scenario samples, compare a later run against them.

A regression is reported only when **both** hold:

- the effect is larger than stated: the median latency rose by at least ``min_increase`` (a fraction,
  0.20 = +20 %) *and* by at least ``min_increase_ms`` (so that a few microseconds on a 1 ms service is
  no regression);
- it is statistically significant: a one-sided Mann-Whitney U test (current slower than baseline,
  ``scipy.stats.mannwhitneyu``) gives p below ``alpha``.

Mann-Whitney alone flags any consistent shift once there are thousands of samples; the effect gate
alone flags noise on small samples. Every figure behind the decision is kept in :class:`Comparison`.

The file is JSON: ``{"version": 1, "scenarios": {key: {"latencies_s": [...], "summary": {...}, ...}}}``,
with at most :data:`MAX_SAMPLES` latencies per scenario (a seeded random subsample beyond that).
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

from scipy.stats import mannwhitneyu

from harness.observations import Observation
from harness.slo import LatencySummary

MAX_SAMPLES = 20_000
MIN_SAMPLES = 20  # fewer on either side: no comparison is made (refused, like a percentile)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One scenario's baseline: successful latencies (seconds) and where they came from."""

    latencies_s: tuple[float, ...]
    taken_at: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)  # feature, scenario, target, profile

    @classmethod
    def of(cls, observations: Iterable[Observation], labels: Mapping[str, str] | None = None) -> Entry:
        latencies = [o.latency_s for o in observations if o.ok]
        if len(latencies) > MAX_SAMPLES:
            latencies = random.Random(0).sample(latencies, MAX_SAMPLES)
        return cls(tuple(latencies), time.time(), dict(labels or {}))


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
                tuple(float(v) for v in e["latencies_s"]), float(e.get("taken_at", 0)), e.get("labels", {})
            )
            for key, e in data.get("scenarios", {}).items()
        }
        return cls(path, entries)

    def record(self, key: str, entry: Entry) -> None:
        self.entries[key] = entry

    def save(self) -> Path:
        scenarios: dict[str, Any] = {}
        for key, entry in sorted(self.entries.items()):
            summary = LatencySummary.of_values(entry.latencies_s)
            scenarios[key] = {
                "taken_at": entry.taken_at,
                "labels": dict(entry.labels),
                "summary": {k: v for k, v in asdict(summary).items() if k != "missing"},
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
    increase: float  # current median / baseline median - 1
    u_statistic: float
    p_value: float  # one-sided: current > baseline
    superiority: float  # P(current sample > baseline sample): U / (n1 * n2), 0.5 = no difference
    min_increase: float
    min_increase_ms: float
    alpha: float

    @property
    def large_enough(self) -> bool:
        delta_ms = (self.current_median_s - self.baseline_median_s) * 1000
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
            f"{self.key}: {verdict}: median {self.baseline_median_s * 1000:.2f} ms -> "
            f"{self.current_median_s * 1000:.2f} ms ({self.increase:+.1%}, effect needed >= "
            f"{self.min_increase:.0%} and >= {self.min_increase_ms:g} ms: "
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
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    min_increase: float = 0.20,
    min_increase_ms: float = 1.0,
    alpha: float = 0.01,
) -> Comparison:
    """Compare two latency samples (seconds); :class:`ValueError` below :data:`MIN_SAMPLES` on a side."""
    if len(baseline) < MIN_SAMPLES or len(current) < MIN_SAMPLES:
        raise ValueError(
            f"{key}: refusing to compare {len(current)} current with {len(baseline)} baseline samples:"
            f" at least {MIN_SAMPLES} needed on each side"
        )
    result = mannwhitneyu(current, baseline, alternative="greater")
    base_median, cur_median = statistics.median(baseline), statistics.median(current)
    return Comparison(
        key=key,
        baseline_n=len(baseline),
        current_n=len(current),
        baseline_median_s=base_median,
        current_median_s=cur_median,
        baseline_p95_s=LatencySummary.of_values(baseline).p95,
        current_p95_s=LatencySummary.of_values(current).p95,
        increase=cur_median / base_median - 1 if base_median > 0 else float("inf"),
        u_statistic=float(result.statistic),
        p_value=float(result.pvalue),
        superiority=float(result.statistic) / (len(current) * len(baseline)),
        min_increase=min_increase,
        min_increase_ms=min_increase_ms,
        alpha=alpha,
    )
