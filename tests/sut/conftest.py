"""Shared fixtures for the reference cluster's own tests: real artifacts and real worker processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness import waiting
from sut.demo_models import Artifact, build_demo, build_slow_model

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
_LISTENING = re.compile(r"listening on port (\d+)")


@dataclass
class WorkerArtifacts:
    root: Path
    demo: dict[str, Artifact]
    slow: Artifact
    corrupt_uri: str


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)


@pytest.fixture(scope="session")
def worker_artifacts(tmp_path_factory: pytest.TempPathFactory) -> WorkerArtifacts:
    root = tmp_path_factory.mktemp("artifacts")
    demo = build_demo(root, ("1", "2", "3"))
    slow = build_slow_model(root, "slow", "1")
    corrupt = root / "corrupt" / "1" / "model.onnx"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(demo["1"].path.read_bytes()[:100])  # a truncated real model
    return WorkerArtifacts(root, demo, slow, "corrupt/1/model.onnx")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _spawn(args: tuple[str, ...], artifact_root: Path, log_path: Path) -> tuple[subprocess.Popen, str | None]:
    argv = [sys.executable, "-m", "sut.worker", "--port", "0", "--artifact-root", str(artifact_root), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    # until it says it listens; None if it exited first or never did (the caller fails with its log)
    match = waiting.poll(
        lambda: _LISTENING.search(log_path.read_text(errors="replace")),
        lambda found: found is not None or proc.poll() is not None,
        timeout=STARTUP_TIMEOUT,
        interval=0.05,
    )
    if match is None or proc.poll() is not None:
        return proc, None
    return proc, f"http://127.0.0.1:{match.group(1)}"


@pytest.fixture
def worker_start(worker_artifacts: WorkerArtifacts, tmp_path: Path) -> Iterator:
    """``worker_start(*args)`` starts ``python -m sut.worker`` on a free port and waits until it listens."""
    started: list[subprocess.Popen] = []

    def start(*args: str, artifact_root: Path | None = None) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        proc, url = _spawn(args, artifact_root or worker_artifacts.root, log_path)
        started.append(proc)
        if url is None:
            raise AssertionError(f"worker did not start (exit {proc.poll()}):\n{log_path.read_text()}")
        return WorkerProcess(proc, url, log_path)

    yield start
    for proc in started:
        _stop(proc)


@pytest.fixture(scope="module")
def worker_shared(worker_artifacts: WorkerArtifacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One worker for a module's read-only tests (bad inputs, lookups); tests must not change its models."""
    log_path = tmp_path_factory.mktemp("worker-shared") / "worker.log"
    proc, url = _spawn((), worker_artifacts.root, log_path)
    try:
        if url is None:
            raise AssertionError(f"worker did not start (exit {proc.poll()}):\n{log_path.read_text()}")
        yield WorkerProcess(proc, url, log_path)
    finally:
        _stop(proc)
