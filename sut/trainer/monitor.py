"""The drift monitor: on a schedule, judge each model's serving version against its training
baseline, and on drift run a retraining automatically (no manual step)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sut.trainer.drift import DriftThresholds, judge
from sut.trainer.gateway_client import GatewayAdmin
from sut.trainer.retrain import export, train_and_evaluate
from sut.trainer.runs import RunLog

log = logging.getLogger("sut.trainer")

LOG_PAGE = 5000  # feature-log requests read per call


@dataclass
class _Window:
    """The most recent logged requests served by one (model, version), about ``window`` input rows.

    Whole log rows are kept (with their seq), so that each pass can read them again from the gateway:
    labels are posted after the answer, often after the monitor first saw the request.
    """

    entries: deque = field(default_factory=deque)  # (seq, inputs rows, labels or None)
    rows_seen: int = 0
    rows_at_last_run: int | None = None
    last_seq: int = 0

    @property
    def inputs(self) -> list[list[float]]:
        return [x for _, rows, _ in self.entries for x in rows]

    @property
    def labels(self) -> list[float | None]:
        out: list[float | None] = []
        for _, rows, labels in self.entries:
            out.extend(labels if labels is not None else [None] * len(rows))
        return out


class DriftMonitor:
    def __init__(
        self,
        gateway: GatewayAdmin,
        artifact_root: Path,
        runs: RunLog,
        *,
        thresholds: DriftThresholds,
        window: int = 400,
        holdout: float = 0.25,
    ) -> None:
        self.gateway, self.artifact_root, self.runs = gateway, Path(artifact_root), runs
        self.thresholds, self.window_size, self.holdout = thresholds, window, holdout
        self.verdicts: dict[str, dict] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._cursor: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- one pass ----------------------------------------------------------------------------
    def check_once(self) -> None:
        for model, version in self.gateway.production_versions().items():
            window = self._read_log(model, version)
            verdict = self._judge(model, version, window)
            with self._lock:
                self.verdicts[model] = verdict
            if verdict["decision"] == "drift" and self._due(window):
                self._retrain(model, version, window, verdict)

    def _read_log(self, model: str, version: str) -> _Window:
        """Read again from the oldest request still in the window (its labels may have arrived since),
        append the new requests of the serving version, and keep the last ``window`` input rows."""
        window = self._windows.setdefault((model, version), _Window())
        start = window.entries[0][0] - 1 if window.entries else self._cursor.get(model, 0)
        fresh: list[tuple[int, list, list | None]] = []
        while True:
            answer = self.gateway.feature_log(model, start, limit=LOG_PAGE)
            for row in answer["rows"]:
                if row["version"] == version:
                    fresh.append((row["seq"], row["inputs"], row.get("labels")))
                    if row["seq"] > window.last_seq:
                        window.rows_seen += len(row["inputs"])
            start = max(start, answer["last_seq"])
            if len(answer["rows"]) < LOG_PAGE:
                break
        if fresh:
            window.last_seq = max(window.last_seq, fresh[-1][0])
        self._cursor[model] = max(self._cursor.get(model, 0), start)
        window.entries = deque(fresh)
        total = sum(len(rows) for _, rows, _ in window.entries)
        while window.entries and total - len(window.entries[0][1]) >= self.window_size:
            total -= len(window.entries.popleft()[1])
        return window

    def _baseline(self, model: str, version: str) -> np.ndarray | None:
        for record in self.gateway.versions(model):
            if record["version"] == version:
                path = (self.artifact_root / record["artifact_uri"]).parent / "baseline.npy"
                return np.load(path) if path.exists() else None
        return None

    def _judge(self, model: str, version: str, window: _Window) -> dict:
        baseline = self._baseline(model, version)
        base = {"model": model, "version": version, "at": time.time()}
        if baseline is None:
            return base | {
                "decision": "insufficient_data",
                "window_size": len(window.inputs),
                "reason": f"no training baseline for {model} version {version}",
                "features": [],
            }
        if not window.inputs:
            inputs = np.empty((0, baseline.shape[1]))
        else:
            inputs = np.asarray(window.inputs, dtype=float)
        return base | judge(baseline, inputs, self.thresholds).to_dict()

    def _due(self, window: _Window) -> bool:
        """One run per window's worth of new rows: a rejected candidate is not retried on the same data."""
        return (
            window.rows_at_last_run is None or window.rows_seen - window.rows_at_last_run >= self.window_size
        )

    # -- retraining --------------------------------------------------------------------------
    def _retrain(self, model: str, version: str, window: _Window, verdict: dict) -> None:
        labelled = [(x, y) for x, y in zip(window.inputs, window.labels, strict=True) if y is not None]
        if len(labelled) < self.thresholds.min_window:
            log.info(
                "drift on %s v%s: waiting for labels (%d of %d)",
                model,
                version,
                len(labelled),
                self.thresholds.min_window,
            )
            return
        window.rows_at_last_run = window.rows_seen
        trigger = {
            "kind": "drift",
            "drifted_features": verdict.get("drifted_features", []),
            "window_size": verdict.get("window_size"),
            "features": verdict.get("features", []),  # the statistics that triggered the run
        }
        run = self.runs.start(model, trigger, version)
        log.info(
            "drift on %s v%s (features %s): retraining as %s",
            model,
            version,
            trigger["drifted_features"],
            run.id,
        )
        try:
            inputs = np.asarray([x for x, _ in labelled], dtype=np.float32)
            labels = np.asarray([y for _, y in labelled], dtype=np.float64)
            serving = next(r for r in self.gateway.versions(model) if r["version"] == version)
            new_version = str(1 + max(int(r["version"]) for r in self.gateway.versions(model)))
            candidate, evaluation = train_and_evaluate(
                inputs,
                labels,
                self.artifact_root / serving["artifact_uri"],
                holdout=self.holdout,
                name=f"{model}-v{new_version}",
            )
            metrics = evaluation.to_dict()
            if not evaluation.better:
                reason = (
                    f"candidate held-out MSE {evaluation.candidate_mse:.4g} is not below the serving "
                    f"version's {evaluation.serving_mse:.4g}"
                )
                self.runs.finish(run, "rejected", reason, metrics=metrics)
                log.warning("%s rejected: %s", run.id, reason)
                return
            artifact = export(self.artifact_root, model, new_version, candidate, inputs)
            self.gateway.register_version(model, artifact.artifact_uri, new_version, version)
            self.gateway.swap(model, new_version)
            self.runs.finish(
                run,
                "completed",
                new_version=new_version,
                artifact_uri=artifact.artifact_uri,
                sha256=artifact.sha256,
                metrics=metrics,
            )
            log.info("%s completed: %s v%s serving (parent v%s)", run.id, model, new_version, version)
        except Exception as exc:  # a run that fails is recorded, the monitor goes on
            log.exception("%s failed", run.id)
            self.runs.finish(run, "failed", f"{type(exc).__name__}: {exc}")

    # -- schedule ----------------------------------------------------------------------------
    def run_forever(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                self.check_once()
            except Exception as exc:  # the gateway may be briefly unreachable; try again next tick
                log.warning("drift check failed: %s", exc)
