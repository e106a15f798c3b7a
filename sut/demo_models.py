"""Real ONNX artifacts for tests and demos, built locally and deterministically (nothing downloaded).

- ``build_demo``: the demo model, one ridge regression per version (scikit-learn -> skl2onnx), each
  trained on its own synthetic data with its own coefficients, so versions answer differently.
- ``build_large_model``: a model whose weights take about ``size_bytes`` (memory budget / OOM tests).
- ``build_slow_model``: a model whose inference takes seconds on a large batch (drain / in-flight tests).

Every model takes ``input`` FP32 ``[N, 4]`` and answers ``predict`` FP32 ``[N, 1]``.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_MODEL = "demo"
N_FEATURES = 4
INPUT_NAME = "input"
OUTPUT_NAME = "predict"
BASELINE_FILE = "baseline.npy"  # beside each artifact: its training inputs (drift baseline)
DEMO_TRAINING_ROWS = 256
# Fixed so that artifacts do not change with the installed onnx/skl2onnx defaults.
TARGET_OPSET = 15
_MAX_PROTOBUF_BYTES = 1_900_000_000


@dataclass(frozen=True)
class Artifact:
    model: str
    version: str
    artifact_uri: str  # relative to the artifact root, e.g. "demo/1/model.onnx"
    path: Path
    sha256: str
    size_bytes: int


def artifact_uri(model: str, version: str) -> str:
    return f"{model}/{version}/model.onnx"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_artifact(root: Path, model: str, version: str, data: bytes) -> Artifact:
    """Write atomically (temp file + rename): a serving process never sees half an artifact."""
    uri = artifact_uri(model, version)
    path = Path(root) / uri
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return Artifact(model, version, uri, path, hashlib.sha256(data).hexdigest(), len(data))


def _version_seed(version: str, seed: int) -> int:
    return (zlib.crc32(version.encode()) + 7919 * seed) % (2**32)


def demo_coefficients(version: str, seed: int = 0) -> np.ndarray:
    """The true coefficients behind a demo version's synthetic training data."""
    rng = np.random.default_rng(_version_seed(version, seed))
    return rng.uniform(-3.0, 3.0, size=N_FEATURES)


def demo_training_data(version: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A demo version's synthetic training set: inputs are independent standard normals
    (``fixtures.data.baseline`` draws traffic the same way), targets a noisy linear function."""
    rng = np.random.default_rng(_version_seed(version, seed) + 1)
    x = rng.normal(size=(DEMO_TRAINING_ROWS, N_FEATURES))
    y = x @ demo_coefficients(version, seed) + rng.uniform(-2, 2) + rng.normal(scale=0.1, size=len(x))
    return x, y


def _demo_onnx(version: str, seed: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import Ridge

    ridge = Ridge(alpha=1.0).fit(*demo_training_data(version, seed))
    onx = convert_sklearn(
        ridge,
        name=f"demo-v{version}",
        initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
        final_types=[(OUTPUT_NAME, FloatTensorType([None, 1]))],
        target_opset=TARGET_OPSET,
    )
    return onx.SerializeToString()


def build_demo(root: Path, versions: tuple[str, ...] = ("1", "2"), *, seed: int = 0) -> dict[str, Artifact]:
    """Write ``root/demo/<v>/model.onnx`` for every version, and beside it ``baseline.npy`` (the
    training inputs, FP32, the trainer's drift baseline); same seed, same bytes."""
    artifacts = {}
    for v in versions:
        artifacts[v] = write_artifact(root, DEMO_MODEL, v, _demo_onnx(v, seed))
        write_baseline(artifacts[v].path.parent, demo_training_data(v, seed)[0])
    return artifacts


def write_baseline(directory: Path, training_inputs: np.ndarray) -> Path:
    """``<directory>/baseline.npy``, written atomically like the artifact it describes."""
    path = Path(directory) / BASELINE_FILE
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.asarray(training_inputs, dtype=np.float32))
    tmp.replace(path)
    return path


def _save_graph(root: Path, model: str, version: str, nodes, initializers, name: str) -> Artifact:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=initializers,
    )
    onx = helper.make_model(
        graph, producer_name="sut.demo_models", opset_imports=[helper.make_opsetid("", TARGET_OPSET)]
    )
    onx.ir_version = 8
    return write_artifact(root, model, version, onx.SerializeToString())


def build_large_model(root: Path, model: str, version: str, size_bytes: int, *, seed: int = 0) -> Artifact:
    """A model whose weights are about ``size_bytes`` (one FP32 ``[4, k]`` initializer, all used).

    ``predict = mean(input @ W, axis=1)``: W is read by every inference, so onnxruntime cannot fold
    it away and really holds it in memory. Random values, so the pages are really touched.
    Limited to ~1.9 GB (one protobuf); an inference allocates an ``[N, k]`` intermediate.
    """
    from onnx import helper, numpy_helper

    if not 0 < size_bytes <= _MAX_PROTOBUF_BYTES:
        raise ValueError(f"size_bytes must be in 1..{_MAX_PROTOBUF_BYTES}, got {size_bytes}")
    k = max(1, size_bytes // (4 * N_FEATURES))
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((N_FEATURES, k), dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "W"], ["hidden"]),
        helper.make_node("ReduceMean", ["hidden"], [OUTPUT_NAME], axes=[1], keepdims=1),
    ]
    return _save_graph(root, model, version, nodes, [numpy_helper.from_array(weights, "W")], "large")


def build_slow_model(
    root: Path, model: str, version: str, *, hidden: int = 512, layers: int = 64, seed: int = 0
) -> Artifact:
    """A deliberately slow model: ``layers`` dense ``hidden x hidden`` tanh layers sharing one weight.

    Sharing the weight keeps the file small (defaults: ~1 MB) while the cost stays
    ``2 * layers * hidden**2`` FLOPs per row (defaults: 34 MFLOP per row). On one onnxruntime thread
    (how the worker runs sessions) that measured ~0.35 s per 1,000 rows on the development machine,
    so a batch of a few thousand rows keeps a request in flight for seconds. Machines differ: tests
    should time a small batch and scale the batch size with ``rows_for``.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)
    w_in = rng.standard_normal((N_FEATURES, hidden), dtype=np.float32)
    w_hidden = (rng.standard_normal((hidden, hidden), dtype=np.float32) * scale).astype(np.float32)
    w_out = (rng.standard_normal((hidden, 1), dtype=np.float32) * scale).astype(np.float32)
    inits = [numpy_helper.from_array(w, n) for w, n in ((w_in, "W_in"), (w_hidden, "W"), (w_out, "W_out"))]
    nodes = [helper.make_node("MatMul", [INPUT_NAME, "W_in"], ["h0_lin"]),
             helper.make_node("Tanh", ["h0_lin"], ["h0"])]  # fmt: skip
    for i in range(1, layers + 1):
        nodes += [helper.make_node("MatMul", [f"h{i - 1}", "W"], [f"h{i}_lin"]),
                  helper.make_node("Tanh", [f"h{i}_lin"], [f"h{i}"])]  # fmt: skip
    nodes.append(helper.make_node("MatMul", [f"h{layers}", "W_out"], [OUTPUT_NAME]))
    return _save_graph(root, model, version, nodes, inits, "slow")


def rows_for(seconds: float, measured_seconds: float, measured_rows: int, *, max_rows: int = 200_000) -> int:
    """Batch size that should take ``seconds``, scaled from one timed batch."""
    per_row = max(measured_seconds, 1e-6) / max(measured_rows, 1)
    return max(1, min(max_rows, int(seconds / per_row)))
