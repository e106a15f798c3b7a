"""Labelled traffic through the gateway: real infer requests with ids, then their labelled outcomes
posted back for the same ids (what a client with ground truth does). Every infer answer is recorded
as an observation; a background mode replays a data set continuously (the load during a rollout).

Labels come from a rule per batch: ``"changed"`` (a changed relationship, ``fixtures.data``) or
``"served"`` (the serving model's own answers: the served model is exactly right on them).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from fixtures.data import concept_change_labels
from harness import trace
from harness.observations import Observation, Observations

LABEL_RULES = ("changed", "served", "none")


@dataclass
class TrafficReport:
    """What the traffic saw: when it began, each version's first answer, every failure."""

    first_sent_at: float | None = None
    requests: int = 0
    rows: int = 0
    first_answer_at: dict[str, float] = field(default_factory=dict)  # version -> wall clock
    last_answer_at: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class TrafficDriver:
    def __init__(self, base_url: str, observations: Observations, *, timeout: float = 10.0) -> None:
        self.observations = observations
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, trust_env=False)
        self.report = TrafficReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ----------------------------------------------------------------------------
    def send(self, model: str, inputs: np.ndarray, *, labels: str, batch: int = 50) -> TrafficReport:
        """Send ``inputs`` in requests of ``batch`` rows, each followed by its labels (per ``labels``)."""
        if labels not in LABEL_RULES:
            raise ValueError(f"labels must be one of {LABEL_RULES}, got {labels!r}")
        for start in range(0, len(inputs), batch):
            self._one(model, inputs[start : start + batch], labels)
        return self.report

    # -- continuous replay -------------------------------------------------------------------
    def start(
        self, model: str, inputs: np.ndarray, *, labels: str, batch: int = 50, pause_s: float = 0.05
    ) -> None:
        """Replay ``inputs`` over and over (same order, same batches) in a thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("this traffic driver already runs a continuous replay")
        if labels not in LABEL_RULES:
            raise ValueError(f"labels must be one of {LABEL_RULES}, got {labels!r}")
        starts = list(range(0, len(inputs), batch))

        def replay() -> None:
            for start in itertools.cycle(starts):
                if self._stop.is_set():
                    return
                self._one(model, inputs[start : start + batch], labels)
                self._stop.wait(pause_s)

        self._thread = threading.Thread(target=replay, name="labelled-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> TrafficReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        return self.report

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self.stop()
        self._http.close()

    # -- internals ---------------------------------------------------------------------------
    def _one(self, model: str, rows: np.ndarray, labels: str) -> None:
        request_id = uuid.uuid4().hex[:16]
        flat = np.asarray(rows, dtype=np.float32)
        body = {
            "id": request_id,
            "inputs": [
                {
                    "name": "input",
                    "shape": list(flat.shape),
                    "datatype": "FP32",
                    "data": flat.ravel().tolist(),
                }
            ],
        }
        path = f"/v2/models/{model}/infer"
        trace.touch("http", f"POST {path}")
        started = time.time()
        with self._lock:
            if self.report.first_sent_at is None:
                self.report.first_sent_at = started
        status, answer, error = self._post(path, body)
        ended = time.time()
        version = (
            str(answer["model_version"]) if isinstance(answer, dict) and "model_version" in answer else None
        )
        self.observations.add(
            Observation(
                started=started,
                latency_s=ended - started,
                status=status,
                model_version=version,
                error=error,
                source="driver",
                request_id=request_id,
                target=f"POST {path}",
            )
        )
        with self._lock:
            self.report.requests += 1
            if status != 200 or version is None:
                self.report.failures.append(f"{request_id}: {status} {error or answer!r}")
                return
            self.report.rows += len(flat)
            self.report.first_answer_at.setdefault(version, ended)
            self.report.last_answer_at[version] = ended
        values = self._labels(flat, answer, labels)
        if values is None:
            return
        trace.touch("http", f"POST /v2/models/{model}/labels")
        label_body = {"labels": [{"id": request_id, "values": values}]}
        status, reply, error = self._post(f"/v2/models/{model}/labels", label_body)
        with self._lock:
            if status != 200 or not isinstance(reply, dict) or reply.get("accepted") != 1:
                self.report.failures.append(f"labels of {request_id}: {status} {error or reply!r}")

    @staticmethod
    def _labels(rows: np.ndarray, answer: dict[str, Any], rule: str) -> list[float] | None:
        if rule == "none":
            return None
        if rule == "served":
            return [float(v) for v in answer["outputs"][0]["data"]]
        return [float(v) for v in concept_change_labels(rows)]

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any, str | None]:
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            return 0, None, f"{type(exc).__name__}: {exc}"
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        error = None
        if response.status_code >= 400:
            error = str(payload.get("error")) if isinstance(payload, dict) else str(payload)
        return response.status_code, payload, error
