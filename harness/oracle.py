"""What each model version computes, from its artifact, run in the test process with onnxruntime.

A serving cluster can say "version 2" and compute with version 1; only the outputs tell. The oracle loads
the same file the workers load (the scenario's artifact, known to the World by (model, version)) and
computes the expected outputs for the inputs a request carried; :func:`mismatches` names every answer
whose outputs differ, with its request id, version, input and both outputs.

Artifacts that answer NaN for some inputs (``fixtures.misbehaving``) are covered too: a 200 answer for an
input whose expected output is not finite is a mismatch (the server hid a broken model's answer).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness import trace
from harness.drivers.routed_traffic import Routed

RTOL = 1e-5
ATOL = 1e-5


class Oracle:
    def __init__(self) -> None:
        self._sessions: dict[Path, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def expected(self, artifact: Path, rows: np.ndarray) -> np.ndarray:
        """The first output of the model in ``artifact`` for ``rows``, flattened per row."""
        trace.touch("file", f"oracle: run {artifact}")  # the model file itself computes the expectation
        with self._lock:
            session = self._sessions.get(artifact)
            if session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                session = self._sessions[artifact] = ort.InferenceSession(
                    str(artifact), options, providers=["CPUExecutionProvider"]
                )
        out = session.run(None, {session.get_inputs()[0].name: np.asarray(rows, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float64).reshape(len(rows), -1)


def mismatches(oracle: Oracle, artifacts: dict[str, Path], answers: list[Routed]) -> list[str]:
    """Every successful answer whose outputs are not what its version's artifact computes for its input.
    ``artifacts`` maps version -> artifact file; an answer naming a version without one is a mismatch."""
    problems: list[str] = []
    groups: dict[str, list[Routed]] = {}
    for a in answers:
        if a.ok:
            groups.setdefault(str(a.version), []).append(a)
    for version, group in groups.items():
        artifact = artifacts.get(version)
        if artifact is None:
            problems += [
                f"{a.request_id}: answered by version {version!r}, which no artifact here builds"
                for a in group
            ]
            continue
        rows = np.concatenate([a.rows for a in group])
        expected = oracle.expected(artifact, rows)
        start = 0
        for a in group:
            n = len(a.rows)
            want = expected[start : start + n].ravel()
            start += n
            got = np.asarray(a.outputs or [], dtype=np.float64)
            if (
                got.shape != want.shape
                or not np.all(np.isfinite(want))
                or not np.allclose(got, want, RTOL, ATOL)
            ):
                problems.append(
                    f"request {a.request_id}: version {version!r} answered {got.tolist()} for input "
                    f"{np.round(a.rows, 4).tolist()}, but version {version!r}'s model computes "
                    f"{want.tolist()}"
                )
    return problems
