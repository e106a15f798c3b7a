"""Retraining decisions on real ONNX artifacts: better candidates are kept, worse ones rejected."""

from __future__ import annotations

import numpy as np

from fixtures.data import drifted
from sut.demo_models import build_demo
from sut.trainer.retrain import export, predict, train_and_evaluate


def test_concept_change_gives_a_better_candidate(tmp_path):
    serving = build_demo(tmp_path, ("1",))["1"]
    inputs = drifted(400, distribution_shift=0.3, feature=0)
    labels = inputs @ np.array([0.5, -1.0, 2.0, 1.5]) + 0.3  # the world changed
    candidate, evaluation = train_and_evaluate(inputs, labels, serving.path, holdout=0.25, name="demo-v2")
    assert evaluation.better, evaluation
    assert evaluation.candidate_mse < 0.01 < evaluation.serving_mse
    artifact = export(tmp_path, "demo", "2", candidate, inputs)
    assert artifact.sha256 != serving.sha256
    assert (artifact.path.parent / "baseline.npy").exists()
    np.testing.assert_allclose(predict(artifact.path, inputs[:5]), predict(candidate, inputs[:5]))


def test_no_concept_change_means_the_candidate_is_rejected(tmp_path):
    serving = build_demo(tmp_path, ("1",))["1"]
    inputs = drifted(400, distribution_shift=0.3, feature=0)
    labels = predict(serving.path, inputs).astype(np.float64)  # the serving model is exactly right
    _, evaluation = train_and_evaluate(inputs, labels, serving.path, holdout=0.25, name="demo-v2")
    assert not evaluation.better, evaluation
