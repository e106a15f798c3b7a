"""Drift statistics: PSI per feature (numpy) and the two-sample KS test (scipy).

Conventions (see docs/architecture.md): PSI < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant.
A window is judged drifted when any feature has PSI above ``psi_threshold`` or a KS p-value below
``ks_p_threshold``. Windows smaller than ``min_window`` are refused rather than judged: a handful
of requests says nothing about a distribution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

PSI_BINS = 10
_EPS = 1e-4  # floor for empty bins, so that PSI stays finite


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.25
    ks_p: float = 0.01
    min_window: int = 200


@dataclass
class FeatureDrift:
    feature: int
    psi: float
    ks_statistic: float
    ks_p_value: float
    drifted: bool


@dataclass
class DriftVerdict:
    decision: str  # "drift" | "no_drift" | "insufficient_data"
    window_size: int
    baseline_size: int
    features: list[FeatureDrift] = field(default_factory=list)
    reason: str = ""

    @property
    def drifted_features(self) -> list[int]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["drifted_features"] = self.drifted_features
        return out


def psi(baseline: np.ndarray, window: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``window`` against ``baseline`` (bins = baseline deciles)."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:  # a (nearly) constant baseline: fall back to equal-width bins over both
        edges = np.linspace(
            min(baseline.min(), window.min()), max(baseline.max(), window.max()) + 1e-9, bins + 1
        )
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(baseline, edges)[0] / len(baseline)
    actual = np.histogram(window, edges)[0] / len(window)
    expected, actual = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def judge(
    baseline: np.ndarray, window: np.ndarray, thresholds: DriftThresholds | None = None
) -> DriftVerdict:
    """Compare a recent window of inputs (rows x features) with the training baseline."""
    t = thresholds or DriftThresholds()
    baseline, window = np.asarray(baseline, dtype=float), np.asarray(window, dtype=float)
    if window.ndim != 2 or baseline.ndim != 2 or window.shape[1:] != baseline.shape[1:]:
        raise ValueError(f"baseline {baseline.shape} and window {window.shape} must be 2-D with equal widths")
    if len(window) < t.min_window:
        return DriftVerdict(
            "insufficient_data",
            len(window),
            len(baseline),
            reason=f"window of {len(window)} rows is below the minimum of {t.min_window}",
        )
    features = []
    for j in range(baseline.shape[1]):
        ks = stats.ks_2samp(baseline[:, j], window[:, j])
        value = psi(baseline[:, j], window[:, j])
        drifted = bool(value > t.psi or ks.pvalue < t.ks_p)
        features.append(FeatureDrift(j, round(value, 6), float(ks.statistic), float(ks.pvalue), drifted))
    decision = "drift" if any(f.drifted for f in features) else "no_drift"
    return DriftVerdict(decision, len(window), len(baseline), features)
