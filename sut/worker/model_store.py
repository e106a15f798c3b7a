"""Loaded model versions with atomic hot-swap, per-version in-flight counts and a memory budget.

A load builds the onnxruntime session OUTSIDE the lock (it can take seconds), then publishes it
under a short lock; versions already serving are never touched by a load, good or failed.
An unload stops routing to a version at once, waits until its in-flight requests are done, then
drops the session. Everything here is synchronous and thread-safe: the app calls it from threads.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import onnxruntime as ort

from sut.demo_models import file_sha256
from sut.errors import ApiError, Conflict, NotFound
from sut.protocol import ONNX_TO_V2, TensorSpec

log = logging.getLogger("sut.worker")

# One intra-op thread per session: requests run in parallel on the worker's thread pool instead,
# which keeps a loaded 2-core machine responsive and inference times predictable.
ORT_THREADS = int(os.environ.get("SUT_ORT_THREADS", "1"))


LOAD_WAIT_SECONDS = 120.0  # how long a load waits for another load of the same version


class LoadError(ApiError):
    """A load that failed; the versions already serving are untouched."""


def version_key(version: str) -> tuple:
    """Natural order: "10" after "9"; numeric parts compare as numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version) if p)


MIN_LATENCY_KEY = "sut.min_latency_ms"


def _declared_min_latency(session: ort.InferenceSession) -> float:
    """Seconds from the model's metadata ``sut.min_latency_ms`` (0 when absent or not a number)."""
    raw = session.get_modelmeta().custom_metadata_map.get(MIN_LATENCY_KEY, "")
    try:
        return max(0.0, float(raw) / 1000.0)
    except ValueError:
        return 0.0


def _specs(args: list) -> list[TensorSpec]:
    specs = []
    for arg in args:
        shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
        specs.append(TensorSpec(arg.name, ONNX_TO_V2.get(arg.type, arg.type), shape))
    return specs


@dataclass(eq=False)
class LoadedVersion:
    model: str
    version: str
    artifact_uri: str
    sha256: str
    size_bytes: int
    session: ort.InferenceSession | None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    loaded_at: float = field(default_factory=time.time)
    # the artifact's own declared minimum answer time (metadata ``sut.min_latency_ms``): a model that waits
    # on something slow, e.g. a remote feature store; the worker holds its answer until then
    min_latency_s: float = 0.0
    in_flight: int = 0
    retired: bool = False  # no longer routable; released once in_flight reaches 0

    def run(self, feeds: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        assert self.session is not None, "a version is only released once no request holds it"
        results = self.session.run(output_names, feeds)
        return dict(zip(output_names, results, strict=True))

    def describe(self) -> dict:
        return {
            "name": self.model,
            "version": self.version,
            "size_bytes": self.size_bytes,
            "in_flight": self.in_flight,
            "state": "UNLOADING" if self.retired else "READY",
            "sha256": self.sha256,
            "artifact_uri": self.artifact_uri,
        }


@dataclass(frozen=True)
class LoadResult:
    version: LoadedVersion
    already_loaded: bool
    seconds: float
    replaced: bool


class ModelStore:
    def __init__(self, artifact_root: Path, memory_budget: int = 0) -> None:
        self.artifact_root = Path(artifact_root).resolve()
        self.memory_budget = memory_budget
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified whenever an in-flight count drops
        self._loaded_idle = threading.Condition(self._lock)  # notified whenever a load ends
        self._serving: dict[str, dict[str, LoadedVersion]] = {}
        self._retiring: list[LoadedVersion] = []
        self._reserved: dict[tuple[str, str], int] = {}  # loads in progress hold their size
        self._unavailable: dict[tuple[str, str], str] = {}  # last failure or unload, for the index

    # ---- queries -------------------------------------------------------------------------------

    def loaded(self) -> list[LoadedVersion]:
        with self._lock:
            return [lv for versions in self._serving.values() for lv in versions.values()]

    def all_in_memory(self) -> list[LoadedVersion]:
        with self._lock:
            serving = [lv for versions in self._serving.values() for lv in versions.values()]
            return serving + list(self._retiring)

    def memory_used(self) -> int:
        return sum(lv.size_bytes for lv in self.all_in_memory())

    def versions_of(self, model: str) -> list[str]:
        with self._lock:
            return sorted(self._serving.get(model, {}), key=version_key)

    def index(self) -> list[dict]:
        with self._lock:
            rows = {
                (lv.model, lv.version): {
                    "name": lv.model,
                    "version": lv.version,
                    "state": "READY",
                    "reason": "",
                }
                for versions in self._serving.values()
                for lv in versions.values()
            }
            for (model, version), reason in self._unavailable.items():
                rows.setdefault(
                    (model, version),
                    {"name": model, "version": version, "state": "UNAVAILABLE", "reason": reason},
                )
        return [rows[k] for k in sorted(rows, key=lambda k: (k[0], version_key(k[1])))]

    def resolve(self, model: str, version: str | None) -> LoadedVersion:
        with self._lock:
            return self._resolve_locked(model, version)

    def _resolve_locked(self, model: str, version: str | None) -> LoadedVersion:
        versions = self._serving.get(model)
        if not versions:
            raise NotFound(f"model '{model}' is not loaded on this worker")
        if version is None:
            return versions[max(versions, key=version_key)]
        if version not in versions:
            loaded = ", ".join(sorted(versions, key=version_key))
            raise NotFound(
                f"model '{model}' version '{version}' is not loaded on this worker (loaded: {loaded})"
            )
        return versions[version]

    @contextmanager
    def acquire(self, model: str, version: str | None) -> Iterator[LoadedVersion]:
        """Hold a version for one request: an unload waits until every holder has let go."""
        with self._lock:
            lv = self._resolve_locked(model, version)
            lv.in_flight += 1
        try:
            yield lv
        finally:
            with self._lock:
                lv.in_flight -= 1
                if lv.in_flight == 0:
                    self._idle.notify_all()

    # ---- load ----------------------------------------------------------------------------------

    def _artifact_path(self, model: str, version: str, uri: str) -> Path:
        rel = PurePosixPath(uri)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise LoadError(
                f"cannot load model '{model}' version '{version}': artifact_uri {uri!r} must be a "
                "relative path inside the artifact root",
                400,
            )
        return self.artifact_root.joinpath(*rel.parts)

    def load(self, model: str, version: str, uri: str, sha256: str | None = None) -> LoadResult:
        label = f"cannot load model '{model}' version '{version}'"
        sha256 = sha256.strip().lower() if sha256 else None
        try:
            path = self._artifact_path(model, version, uri)
        except LoadError as exc:
            self._note_failure(model, version, exc.message)
            raise
        if not path.is_file():
            self._note_failure(model, version, f"artifact '{uri}' not found")
            raise LoadError(f"{label}: artifact '{uri}' not found under {self.artifact_root}", 404)
        size = path.stat().st_size
        with self._lock:
            # The same version being loaded already (a gateway swap racing the registration's
            # assignments): wait for that load, then answer from its outcome.
            other_done = self._loaded_idle.wait_for(
                lambda: (model, version) not in self._reserved, LOAD_WAIT_SECONDS
            )
            if not other_done:
                raise Conflict(f"{label}: another load of this version is still in progress")
            current = self._serving.get(model, {}).get(version)
            if current is not None and sha256 in (None, current.sha256) and current.artifact_uri == uri:
                return LoadResult(current, already_loaded=True, seconds=0.0, replaced=False)
            in_use = sum(lv.size_bytes for vs in self._serving.values() for lv in vs.values())
            in_use += sum(lv.size_bytes for lv in self._retiring) + sum(self._reserved.values())
            if self.memory_budget and in_use + size > self.memory_budget:
                raise LoadError(
                    f"{label}: it needs {size} bytes but the memory budget is {self.memory_budget} bytes "
                    f"and {in_use} bytes are in use ({self.memory_budget - in_use} free)",
                    507,
                )
            self._reserved[(model, version)] = size
        started = time.monotonic()
        try:
            new = self._build(model, version, uri, path, size, sha256, label)
        except BaseException as exc:
            with self._lock:
                self._reserved.pop((model, version), None)
                self._loaded_idle.notify_all()
            if isinstance(exc, LoadError):
                self._note_failure(model, version, exc.message)
            raise
        with self._lock:  # the swap itself: a dictionary assignment, with the reservation's release
            self._reserved.pop((model, version), None)
            self._loaded_idle.notify_all()
            old = self._serving.setdefault(model, {}).get(version)
            self._serving[model][version] = new
            self._unavailable.pop((model, version), None)
            if old is not None:
                old.retired = True
                self._retiring.append(old)
        if old is not None:
            self._wait_and_release([old], timeout=None)
        seconds = time.monotonic() - started
        log.info("loaded model %s version %s (%d bytes) in %.3fs", model, version, size, seconds)
        return LoadResult(new, already_loaded=False, seconds=seconds, replaced=old is not None)

    def _build(
        self, model: str, version: str, uri: str, path: Path, size: int, sha256: str | None, label: str
    ) -> LoadedVersion:
        actual = file_sha256(path)
        if sha256 is not None and actual != sha256:
            raise LoadError(
                f"{label}: sha256 mismatch for '{uri}': expected {sha256}, artifact has {actual}", 422
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = ORT_THREADS
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LoadError(
                f"{label}: artifact '{uri}' is not a valid ONNX model: {reason[:300]}", 422
            ) from None
        return LoadedVersion(
            model,
            version,
            uri,
            actual,
            size,
            session,
            _specs(session.get_inputs()),
            _specs(session.get_outputs()),
            min_latency_s=_declared_min_latency(session),
        )

    def _note_failure(self, model: str, version: str, reason: str) -> None:
        with self._lock:
            if version not in self._serving.get(model, {}):
                self._unavailable[(model, version)] = reason

    # ---- unload --------------------------------------------------------------------------------

    def unload(self, model: str, version: str | None, timeout: float | None = None) -> list[str]:
        """Stop routing to the version (all versions if None), wait for its in-flight requests, release it."""
        with self._lock:
            versions = self._serving.get(model)
            if not versions:
                raise NotFound(f"cannot unload model '{model}': it is not loaded on this worker")
            if version is not None and version not in versions:
                loaded = ", ".join(sorted(versions, key=version_key))
                raise NotFound(
                    f"cannot unload model '{model}' version '{version}': not loaded on this worker "
                    f"(loaded: {loaded})"
                )
            names = [version] if version is not None else sorted(versions, key=version_key)
            gone = [versions.pop(v) for v in names]
            if not versions:
                del self._serving[model]
            for lv in gone:
                lv.retired = True
                self._retiring.append(lv)
                self._unavailable[(model, lv.version)] = "unloaded"
        self._wait_and_release(gone, timeout)
        log.info("unloaded model %s version(s) %s", model, ", ".join(names))
        return names

    def _wait_and_release(self, versions: list[LoadedVersion], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while any(lv.in_flight for lv in versions):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    # Requests still running keep their own reference to the session; we only stop
                    # counting it as ours.
                    log.warning("released versions with requests still in flight after %.1fs", timeout)
                    break
                self._idle.wait(left)
            for lv in versions:
                if lv in self._retiring:
                    self._retiring.remove(lv)
                if lv.in_flight == 0:
                    lv.session = None

    def loading(self) -> int:
        with self._lock:
            return len(self._reserved)

    def in_flight(self) -> int:
        return sum(lv.in_flight for lv in self.all_in_memory())
