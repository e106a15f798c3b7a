"""The drift scenarios' traffic, judged offline: every window the trainer can see is decided as the
feature expects. The traffic is sent in whole requests of ``BATCH_ROWS`` rows and replayed in order,
so the trainer only ever judges a prefix of the data set (from its minimum window on) or a full
window, which is a rotation of the data set: the same rows, the same statistics."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.data import baseline, drifted
from harness.targets.reference import TrainerSpec
from steps.drift import BASELINE_SEED, BATCH_ROWS, DRIFT_SEED
from sut.demo_models import demo_training_data
from sut.trainer.drift import DriftThresholds, judge

WINDOW, MIN_WINDOW = 12 * BATCH_ROWS, 6 * BATCH_ROWS  # as the feature's trainer step configures


def windows(data: np.ndarray) -> list[np.ndarray]:
    prefixes = [data[:k] for k in range(MIN_WINDOW, WINDOW + 1, BATCH_ROWS)]
    rotations = [np.roll(data, -k, axis=0) for k in range(0, WINDOW, BATCH_ROWS)]
    return prefixes + rotations


@pytest.mark.parametrize(
    ("traffic", "expected"),
    [
        (baseline(WINDOW, seed=BASELINE_SEED), []),
        (drifted(WINDOW, distribution_shift=0.02, feature=2, seed=DRIFT_SEED), []),
        (drifted(WINDOW, distribution_shift=0.3, feature=2, seed=DRIFT_SEED), [2]),
    ],
    ids=["baseline", "shift-0.02", "shift-0.3"],
)
def test_every_window_the_trainer_can_see_is_judged_as_the_feature_expects(traffic, expected):
    spec = TrainerSpec()
    thresholds = DriftThresholds(psi=spec.psi, ks_p=spec.ks_p, min_window=MIN_WINDOW)
    reference = demo_training_data("1")[0].astype(np.float32)  # what build_demo saves as baseline.npy
    for window in windows(traffic):
        verdict = judge(reference, window, thresholds)
        assert verdict.drifted_features == expected, (len(window), verdict.to_dict())


def test_the_feature_trainer_windows_match_the_spec_defaults():
    assert (TrainerSpec().window, TrainerSpec().min_window) == (WINDOW, MIN_WINDOW)
