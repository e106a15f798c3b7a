"""The output oracle on real artifacts: right outputs pass, the wrong model under the right label and a hidden
NaN are named; and a process's resident memory read from /proc."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from fixtures.misbehaving import build_misbehaving
from harness.drivers.routed_traffic import Routed
from harness.oracle import Oracle, mismatches
from harness.processes import group_rss
from sut.demo_models import build_demo


def answer(version: str, row: np.ndarray, outputs: list[float] | None, status: int = 200) -> Routed:
    return Routed(
        time.time(), 0.01, status, version, version, version, f"r-{version}", None, row, outputs, None
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    demo = build_demo(root, ("1", "2"))
    bad = build_misbehaving(root, "demo", "3", base_version="1", fail_fraction=0.5)
    return {"1": demo["1"].path, "2": demo["2"].path, "3": bad.path}


def run(path: Path, rows: np.ndarray) -> list[float]:
    return ort.InferenceSession(str(path)).run(None, {"input": rows})[0].ravel().tolist()


def test_right_outputs_pass_and_the_wrong_model_under_the_right_label_is_named(
    files: dict[str, Path],
) -> None:
    rows = np.random.default_rng(0).normal(size=(20, 1, 4)).astype(np.float32)
    right = [answer(v, r, run(files[v], r)) for r in rows for v in ("1", "2")]
    assert mismatches(Oracle(), files, right) == []
    lying = [answer("2", r, run(files["1"], r)) for r in rows[:3]]  # computed by 1, labelled 2
    problems = mismatches(Oracle(), files, lying)
    assert len(problems) == 3 and "version '2' answered" in problems[0] and "computes" in problems[0]


def test_a_200_for_an_input_the_model_answers_nan_is_a_mismatch(files: dict[str, Path]) -> None:
    rows = np.random.default_rng(1).normal(size=(200, 1, 4)).astype(np.float32)
    expected = [run(files["3"], r)[0] for r in rows]
    failing = [r for r, e in zip(rows, expected, strict=True) if not np.isfinite(e)]
    assert 60 < len(failing) < 140  # about half of the inputs: the artifact's own share
    hidden = [answer("3", failing[0], run(files["1"], failing[0]))]  # answered with the base model's value
    assert mismatches(Oracle(), files, hidden)
    refused = [answer("3", failing[0], None, status=500)]  # failures are judged by other steps
    assert mismatches(Oracle(), files, refused) == []


def test_an_answer_from_a_version_without_an_artifact_is_named(files: dict[str, Path]) -> None:
    row = np.zeros((1, 4), dtype=np.float32)
    assert "no artifact" in mismatches(Oracle(), files, [answer("9", row, [0.0])])[0]


def test_resident_memory_is_read_from_proc_and_follows_an_allocation() -> None:
    touch = "b=bytearray(200_000_000); b[::4096]=b'x'*len(b[::4096]); "
    code = f"import time; {touch}print('ok', flush=True); time.sleep(30)"
    # in sessions of their own: each leads its process group, as a local backend's service does
    small = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ok', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    big = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert small.stdout is not None and big.stdout is not None
        small.stdout.readline(), big.stdout.readline()
        grown = group_rss(big.pid) - group_rss(small.pid)
        assert 180_000_000 < grown < 260_000_000
    finally:
        for p in (small, big):
            p.kill()
            p.wait()
