"""Fixtures for the harness core's own tests: real clusters of real subprocesses on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.models import demo_versions
from harness.backends.local import LocalBackend
from harness.processes import process_state as harness_process_state
from harness.targets.reference import ClusterSpec, ReferenceCluster

# Short enough that expiry tests are quick, long enough that a busy 2-core machine does not expire
# healthy workers by accident (expiry = 3 missed heartbeats = 1.5 s).
TEST_HEARTBEAT_S = 0.5


@pytest.fixture(scope="session")
def demo_artifact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact root holding demo versions 1, 2 and 3 (3 is never preloaded: for swap tests)."""
    root = tmp_path_factory.mktemp("artifacts")
    demo_versions(root, ("1", "2", "3"))
    return root


def _demo_spec(artifact_root: Path, workers: int = 2, **overrides: object) -> ClusterSpec:
    """Demo v1 (production) and v2 preloaded; fast heartbeats."""
    spec = ClusterSpec(
        workers=workers,
        heartbeat_interval=TEST_HEARTBEAT_S,
        artifact_root=artifact_root,
        preload=[("demo", "1", "demo/1/model.onnx"), ("demo", "2", "demo/2/model.onnx")],
    )
    for key, value in overrides.items():
        setattr(spec, key, value)
    return spec


@pytest.fixture
def local_backend(tmp_path: Path) -> Iterator[LocalBackend]:
    """A local backend not started yet; torn down after the test whatever happened."""
    backend = LocalBackend(tmp_path / "cluster")
    yield backend
    backend.teardown()


@pytest.fixture
def local_cluster(local_backend: LocalBackend, demo_artifact_root: Path) -> Iterator[ReferenceCluster]:
    """A started reference cluster on the local backend: gateway + 2 workers holding demo v1."""
    cluster = ReferenceCluster(local_backend)
    try:
        cluster.start(_demo_spec(demo_artifact_root))
        yield cluster
    finally:
        cluster.teardown()


@pytest.fixture
def start_local_cluster(local_backend: LocalBackend) -> Iterator[Callable[[ClusterSpec], ReferenceCluster]]:
    """``start_local_cluster(spec)``: a reference cluster started on the test's local backend."""
    started: list[ReferenceCluster] = []

    def start(spec: ClusterSpec) -> ReferenceCluster:
        cluster = ReferenceCluster(local_backend)
        started.append(cluster)
        cluster.start(spec)
        return cluster

    yield start
    for cluster in started:
        cluster.teardown()


@pytest.fixture
def make_demo_spec(demo_artifact_root: Path) -> Callable[..., ClusterSpec]:
    """``make_demo_spec(workers=2, artifact_root=..., **overrides)``: the demo spec (on the session's
    artifact root unless told)."""

    def make(workers: int = 2, artifact_root: Path = demo_artifact_root, **overrides: object) -> ClusterSpec:
        return _demo_spec(artifact_root, workers, **overrides)

    return make


def _pid_gone(pid: int) -> bool:
    """True when no process (or only a zombie) has this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture
def pid_gone() -> Callable[[int], bool]:
    return _pid_gone


@pytest.fixture
def process_state() -> Callable[[int], str]:
    """The kernel's one-letter state of a pid (R, S, T stopped, Z zombie), "" if gone."""
    return harness_process_state


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for a child Python that must import this checkout's packages."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
