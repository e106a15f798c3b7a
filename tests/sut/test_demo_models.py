"""The demo, large and slow artifacts are real ONNX models, deterministic, with the contract's interface."""

from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime as ort
import pytest

from sut.demo_models import build_demo, build_large_model, build_slow_model, rows_for

X = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]], dtype=np.float32)


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def interface(sess: ort.InferenceSession) -> tuple:
    [i], [o] = sess.get_inputs(), sess.get_outputs()
    return (i.name, i.type, i.shape[1], o.name, o.type, o.shape[1])


def test_demo_artifacts_follow_the_contract(tmp_path):
    artifacts = build_demo(tmp_path)
    assert set(artifacts) == {"1", "2"}
    answers = {}
    for version, art in artifacts.items():
        assert (art.model, art.version, art.artifact_uri) == ("demo", version, f"demo/{version}/model.onnx")
        assert art.path == tmp_path / "demo" / version / "model.onnx"
        data = art.path.read_bytes()
        assert (art.size_bytes, art.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        sess = session(art.path)
        assert interface(sess) == ("input", "tensor(float)", 4, "predict", "tensor(float)", 1)
        [out] = sess.run(["predict"], {"input": X})
        assert out.shape == (2, 1) and out.dtype == np.float32
        answers[version] = out
    assert not np.allclose(answers["1"], answers["2"]), "versions must answer differently"


def test_demo_is_a_linear_model_per_version(tmp_path):
    """Ridge regression: the answer is affine in the input, so f(a) + f(b) - f(0) == f(a + b)."""
    sess = session(build_demo(tmp_path, ("7",))["7"].path)
    a, b, zero = X[:1], X[1:], np.zeros((1, 4), dtype=np.float32)
    f = lambda x: sess.run(["predict"], {"input": x})[0]  # noqa: E731
    assert f(a) + f(b) - f(zero) == pytest.approx(f(a + b), abs=1e-4)


def test_demo_is_deterministic_by_seed(tmp_path):
    first = build_demo(tmp_path / "a", ("1", "2"))
    again = build_demo(tmp_path / "b", ("1", "2"))
    other_seed = build_demo(tmp_path / "c", ("1", "2"), seed=1)
    for v in ("1", "2"):
        assert first[v].sha256 == again[v].sha256
        assert first[v].sha256 != other_seed[v].sha256
    assert first["1"].sha256 != first["2"].sha256


def test_large_model_weighs_about_the_requested_size(tmp_path):
    art = build_large_model(tmp_path, "big", "1", 8_000_000)
    assert art.artifact_uri == "big/1/model.onnx"
    assert 8_000_000 <= art.size_bytes <= 8_000_000 * 1.01
    sess = session(art.path)
    assert interface(sess) == ("input", "tensor(float)", 4, "predict", "tensor(float)", 1)
    assert sess.run(["predict"], {"input": X})[0].shape == (2, 1)
    with pytest.raises(ValueError, match="size_bytes"):
        build_large_model(tmp_path, "big", "2", 0)


def test_slow_model_is_small_but_costs_per_row(tmp_path):
    art = build_slow_model(tmp_path, "slow", "1")
    assert art.size_bytes < 2_000_000
    sess = session(art.path)
    assert interface(sess) == ("input", "tensor(float)", 4, "predict", "tensor(float)", 1)
    rows = np.random.default_rng(0).random((500, 4), dtype=np.float32)
    [out] = sess.run(["predict"], {"input": rows})
    assert out.shape == (500, 1) and np.isfinite(out).all()
    assert rows_for(2.0, measured_seconds=0.5, measured_rows=500) == 2000
