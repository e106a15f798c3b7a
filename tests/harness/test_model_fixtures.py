"""Model artifact fixtures: real ONNX files onnxruntime loads (or refuses), cached between scenarios."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

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


def test_demo_versions_are_cached_and_copied_not_linked(tmp_path: Path) -> None:
    first = demo_versions(tmp_path / "a", ("7",))["7"]
    started = time.perf_counter()
    second = demo_versions(tmp_path / "b", ("7",))["7"]
    assert time.perf_counter() - started < 0.2  # no rebuild
    assert first.sha256 == second.sha256
    assert first.path.stat().st_ino != second.path.stat().st_ino
    first.path.write_bytes(b"damaged")  # one scenario damaging its copy ...
    third = demo_versions(tmp_path / "c", ("7",))["7"]
    assert file_sha256(third.path) == first.sha256  # ... does not reach the next one


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


CACHE_OWNER = """
import os, signal, sys
from pathlib import Path
from fixtures import models
models.demo_versions(Path(sys.argv[1]), ("1",))
print(models._cache_dir, flush=True)
{ending}
"""


@pytest.mark.parametrize(
    ("ending", "expected_rc"),
    [("pass", 0), ("os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM)],
    ids=["exit", "sigterm"],
)
def test_the_cache_directory_is_removed_when_its_process_ends(
    tmp_path: Path, subprocess_env: dict[str, str], ending: str, expected_rc: int
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CACHE_OWNER.format(ending=ending), str(tmp_path)],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == expected_rc, proc.stderr
    cache = Path(proc.stdout.strip())
    assert cache.name.startswith("servingbdd-artifacts-") and not cache.exists()
    assert (tmp_path / "demo" / "1" / "model.onnx").is_file()  # the scenario's copy is not the cache's
