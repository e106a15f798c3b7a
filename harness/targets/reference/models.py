"""The reference cluster's models as the features see them, with the answers each version must give.

Every reference model takes ``input`` FP32 ``[N, 4]`` and answers ``predict`` FP32 ``[N, 1]``. A
version's right answers are computed in the test process by running its artifact file (the one the
workers load, ``<artifact root>/<model>/<version>/model.onnx``) with onnxruntime: a worker that answers
with another version's model under this version's label is caught, whatever label it puts on it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from harness.targets.base import ModelSpec, TargetError, TensorSpec
from sut.demo_models import INPUT_NAME, N_FEATURES, artifact_uri

OUTPUT_NAME = "predict"
INPUTS = (TensorSpec(INPUT_NAME, "FP32", (-1, N_FEATURES)),)
OUTPUTS = (TensorSpec(OUTPUT_NAME, "FP32", (-1, 1)),)
TOLERANCE = 1e-4  # float32 arithmetic on two machines: far below the difference between versions

_sessions: dict[tuple[str, float], Any] = {}  # (path, mtime) -> onnxruntime session
_lock = threading.Lock()


def demo_rows(rows: int, seed: int = 0) -> list[float]:
    """Deterministic, varied ``[rows, 4]`` feature data, row-major (standard-normal-like values)."""
    rng = np.random.default_rng(1000 + seed)
    return [round(float(v), 4) for v in rng.normal(size=rows * N_FEATURES)]


def model_spec(artifact_root: Path, name: str) -> ModelSpec:
    """The spec of model ``name`` whose versions live under ``artifact_root/<name>/``."""
    directory = Path(artifact_root) / name
    versions = tuple(sorted(p.name for p in directory.iterdir() if p.is_dir())) if directory.is_dir() else ()

    def expected(version: str, inputs: dict[str, list[Any]]) -> dict[str, list[float]]:
        return {OUTPUT_NAME: run_artifact(Path(artifact_root) / artifact_uri(name, version), inputs)}

    return ModelSpec(
        name=name,
        versions=versions,
        inputs=INPUTS,
        outputs=OUTPUTS,
        generate=lambda rows, seed: {INPUT_NAME: demo_rows(rows, seed)},
        expected=expected,
        tolerance=TOLERANCE,
    )


def run_artifact(path: Path, inputs: dict[str, list[Any]]) -> list[float]:
    """What the ONNX file at ``path`` computes for ``inputs`` (flat ``predict`` values)."""
    import onnxruntime

    if not path.is_file():
        raise TargetError(f"no artifact at {path}: cannot tell what this version must answer")
    key = (str(path), path.stat().st_mtime)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            _sessions[key] = session
    data = np.asarray(inputs[INPUT_NAME], dtype=np.float32).reshape(-1, N_FEATURES)
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: data})
    return [float(v) for v in np.asarray(out).reshape(-1)]
