"""Drift statistics on generated data with known shifts."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.data import baseline, drifted
from sut.trainer.drift import DriftThresholds, judge, psi


def test_psi_is_zero_for_identical_and_large_for_a_big_shift():
    base = baseline(5000, seed=0)[:, 0]
    assert psi(base, base) == pytest.approx(0.0, abs=1e-9)
    assert psi(base, base + 1.0) > 0.25


def test_no_drift_on_fresh_baseline_traffic():
    verdict = judge(baseline(2000, seed=0), baseline(600, seed=5))
    assert verdict.decision == "no_drift", verdict.to_dict()


def test_shift_of_0_3_sd_is_detected_on_the_shifted_feature_only():
    verdict = judge(baseline(2000, seed=0), drifted(600, distribution_shift=0.3, feature=2, seed=5))
    assert verdict.decision == "drift"
    assert verdict.drifted_features == [2], verdict.to_dict()


def test_shift_of_0_02_sd_triggers_nothing():
    verdict = judge(baseline(2000, seed=0), drifted(600, distribution_shift=0.02, feature=2, seed=5))
    assert verdict.decision == "no_drift", verdict.to_dict()


def test_small_windows_are_refused_not_judged():
    verdict = judge(baseline(2000), drifted(50, distribution_shift=3.0), DriftThresholds(min_window=200))
    assert verdict.decision == "insufficient_data"
    assert "below the minimum of 200" in verdict.reason


def test_mismatched_widths_are_an_error():
    with pytest.raises(ValueError, match="equal widths"):
        judge(np.zeros((10, 4)), np.zeros((300, 3)))
