"""Model artifact fixtures: real ONNX files onnxruntime loads (or refuses), cached between scenarios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from fixtures import models
from fixtures.models import corrupt_artifact, demo_versions, missing_artifact, missing_artifact_uri
from sut.demo_models import file_sha256


def _predict(path: Path) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(session.run(None, {"input": np.ones((1, 4), dtype=np.float32)})[0][0][0])


def test_demo_versions_are_real_distinct_models(tmp_path: Path) -> None:
    arts = demo_versions(tmp_path, ("1", "2"))
    assert set(arts) == {"1", "2"}
    for version, art in arts.items():
        assert art.path == tmp_path / "demo" / version / "model.onnx" == tmp_path / art.artifact_uri
        assert file_sha256(art.path) == art.sha256 and art.path.stat().st_size == art.size_bytes
    assert _predict(arts["1"].path) != _predict(arts["2"].path)


def test_demo_versions_are_cached_and_copied_not_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = demo_versions(tmp_path / "a", ("7",))["7"]
    monkeypatch.setattr(models, "build_demo", _no_build)
    second = demo_versions(tmp_path / "b", ("7",))["7"]  # from the cache
    assert first.sha256 == second.sha256
    assert first.path.stat().st_ino != second.path.stat().st_ino
    first.path.write_bytes(b"damaged")  # one scenario damaging its copy ...
    third = demo_versions(tmp_path / "c", ("7",))["7"]
    assert file_sha256(third.path) == first.sha256  # ... does not reach the next one


def _no_build(*args: object, **kwargs: object) -> None:
    raise AssertionError("built again although the cache holds the version")


def test_corrupt_artifact_exists_but_onnxruntime_refuses_it(tmp_path: Path) -> None:
    good = demo_versions(tmp_path, ("1",))["1"]
    bad = corrupt_artifact(tmp_path, "demo", "1")  # over a good one: replaced, not written through
    assert bad.path == good.path and bad.path.exists() and bad.size_bytes > 0
    assert file_sha256(bad.path) == bad.sha256 != good.sha256
    with pytest.raises(Exception, match=r"(?i)protobuf|parse|load"):
        ort.InferenceSession(str(bad.path), providers=["CPUExecutionProvider"])


def test_missing_artifact_names_no_file(tmp_path: Path) -> None:
    uri = missing_artifact_uri("demo", "9")
    assert not (tmp_path / uri).exists()
    art = missing_artifact(tmp_path, "demo", "9")
    assert art.artifact_uri == uri and not art.path.exists() and art.size_bytes == 0


CACHE_USER = """
import sys
from pathlib import Path
from fixtures import models
art = models.demo_versions(Path(sys.argv[1]), ("1", "2"))
print(models._cache_dir, art["1"].sha256, "sklearn" in sys.modules, flush=True)
"""


def _demo_in_new_process(root: Path, env: dict[str, str]) -> tuple[Path, str, bool]:
    proc = subprocess.run(
        [sys.executable, "-c", CACHE_USER, str(root)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    cache, sha256, imported_sklearn = proc.stdout.split()
    return Path(cache), sha256, imported_sklearn == "True"


def test_a_later_process_takes_the_models_from_the_disk_cache(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "SERVINGBDD_CACHE_DIR": str(tmp_path / "cache")}
    cache, built_sha, built_with_sklearn = _demo_in_new_process(tmp_path / "first", env)
    assert cache.parent == tmp_path / "cache" / "demo-models" and built_with_sklearn
    cached_path = cache / "demo" / "1" / "model.onnx"
    assert file_sha256(cached_path) == built_sha
    _, sha, imported_sklearn = _demo_in_new_process(tmp_path / "second", env)
    assert sha == built_sha and not imported_sklearn  # nothing trained or converted again
    assert file_sha256(tmp_path / "second" / "demo" / "1" / "model.onnx") == built_sha

    # a version whose baseline was never written (its builder died between the two files) is rebuilt
    (cache / "demo" / "2" / "baseline.npy").unlink()
    (cache / "demo" / "2" / "model.onnx").write_bytes(b"half")
    _, _, imported_sklearn = _demo_in_new_process(tmp_path / "third", env)
    assert imported_sklearn
    assert _predict(tmp_path / "third" / "demo" / "2" / "model.onnx") == _predict(
        tmp_path / "first" / "demo" / "2" / "model.onnx"
    )
