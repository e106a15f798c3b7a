"""The record of retraining runs (kept in memory and appended to a JSON-lines file)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Run:
    id: str
    model: str
    trigger: dict
    parent_version: str
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    status: str = "running"  # running | completed | rejected | failed
    reason: str = ""
    new_version: str | None = None
    artifact_uri: str | None = None
    sha256: str | None = None
    metrics: dict = field(default_factory=dict)


class RunLog:
    def __init__(self, path: Path | None = None) -> None:
        self._runs: list[Run] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._path = path

    def start(self, model: str, trigger: dict, parent_version: str) -> Run:
        with self._lock:
            run = Run(f"run-{next(self._ids)}", model, trigger, parent_version)
            self._runs.append(run)
            return run

    def finish(self, run: Run, status: str, reason: str = "", **fields) -> None:
        with self._lock:
            run.status, run.reason, run.ended_at = status, reason, time.time()
            for key, value in fields.items():
                setattr(run, key, value)
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(run)) + "\n")

    def list(self, model: str | None = None) -> list[dict]:
        with self._lock:
            return [asdict(r) for r in self._runs if model is None or r.model == model]
