"""Retraining: fit a candidate on recent labelled rows, export it to ONNX, and compare it with the
serving version on a held-out slice of the same rows. A candidate that is not better is rejected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sut.demo_models import (
    INPUT_NAME,
    N_FEATURES,
    OUTPUT_NAME,
    TARGET_OPSET,
    Artifact,
    write_artifact,
    write_baseline,
)


@dataclass
class Evaluation:
    candidate_mse: float
    serving_mse: float
    train_rows: int
    holdout_rows: int

    @property
    def better(self) -> bool:
        return self.candidate_mse < self.serving_mse

    def to_dict(self) -> dict:
        return {
            "candidate_mse": self.candidate_mse,
            "serving_mse": self.serving_mse,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
        }


def ridge_onnx(inputs: np.ndarray, labels: np.ndarray, name: str) -> bytes:
    """Fit a ridge regression and convert it with skl2onnx (same interface as the demo model)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=1.0).fit(inputs, labels)
    onx = convert_sklearn(
        model,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
        final_types=[(OUTPUT_NAME, FloatTensorType([None, 1]))],
        target_opset=TARGET_OPSET,
    )
    return onx.SerializeToString()


def predict(onnx_bytes_or_path: bytes | Path, inputs: np.ndarray) -> np.ndarray:
    source = onnx_bytes_or_path if isinstance(onnx_bytes_or_path, bytes) else str(onnx_bytes_or_path)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: inputs.astype(np.float32)})[0].reshape(-1)


def split(rows: int, holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / held-out index split."""
    order = np.random.default_rng(seed).permutation(rows)
    cut = max(1, round(rows * holdout))
    return order[cut:], order[:cut]


def train_and_evaluate(
    inputs: np.ndarray, labels: np.ndarray, serving_artifact: Path, *, holdout: float, name: str
) -> tuple[bytes, Evaluation]:
    train, held = split(len(inputs), holdout)
    candidate = ridge_onnx(inputs[train], labels[train], name)
    truth = labels[held]
    candidate_mse = float(np.mean((predict(candidate, inputs[held]) - truth) ** 2))
    serving_mse = float(np.mean((predict(serving_artifact, inputs[held]) - truth) ** 2))
    return candidate, Evaluation(candidate_mse, serving_mse, len(train), len(held))


def export(root: Path, model: str, version: str, onnx_bytes: bytes, training_inputs: np.ndarray) -> Artifact:
    """Write the artifact and, beside it, its training baseline for later drift checks."""
    artifact = write_artifact(root, model, version, onnx_bytes)
    write_baseline(artifact.path.parent, training_inputs)
    return artifact
