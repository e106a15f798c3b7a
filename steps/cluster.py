"""Steps that build model artifacts and start the cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fixtures.models import demo_versions
from harness import trace
from harness.backends.base import ClusterSpec
from harness.steps_registry import given
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)

#: Prepended to the services' PYTHONPATH: a directory holding a ``sitecustomize.py`` that patches the
#: reference cluster at start-up (``tests/mutants/<name>/``), used to prove that the features can fail.
SUT_PYTHONPATH_ENV = "HARNESS_SUT_PYTHONPATH"
REPO_ROOT = Path(__file__).resolve().parent.parent


def sut_env() -> dict[str, str]:
    """Environment for the services: the mutant directory from ``HARNESS_SUT_PYTHONPATH``, if set."""
    extra = os.environ.get(SUT_PYTHONPATH_ENV, "").strip()
    if not extra:
        return {}
    parts = [extra, str(REPO_ROOT)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(parts)}


def artifact_root(world: World) -> Path:
    return world.workdir / "artifacts"


@given(
    "the demo model with versions {versions:Versions}",
    example='Given the demo model with versions "1" and "2"',
)
def demo_model_versions(world: World, versions: tuple[str, ...]) -> None:
    """Build real ONNX artifacts of the demo model (one per version) in the scenario's artifact root."""
    trace.touch("file", f"build demo {versions}")
    for version, artifact in demo_versions(artifact_root(world), versions).items():
        world.artifacts[("demo", version)] = artifact
    built = sorted(v for (m, v) in world.artifacts if m == "demo")
    missing = [v for v in versions if not (artifact_root(world) / "demo" / v / "model.onnx").is_file()]
    assert not missing, (
        f"expected artifacts for demo versions {versions} on disk, missing {missing} (built {built})"
    )


def _start(
    world: World,
    workers: int,
    model: str,
    version: str,
    heartbeat: float = 1.0,
    db: str = "sqlite",
    **spec_options: Any,
) -> None:
    """Start the cluster; ``spec_options`` are more :class:`ClusterSpec` fields (join_token_overlap, ...)."""
    artifact = world.artifacts.get((model, version))
    assert artifact is not None, (
        f"no artifact for {model} version {version!r}: add a step like "
        f"'Given the demo model with versions \"{version}\"' before starting the cluster"
    )
    spec = ClusterSpec(
        workers=workers,
        heartbeat_interval=heartbeat,
        db=db,
        artifact_root=artifact_root(world),
        preload=[(model, version, artifact.artifact_uri)],
        env=sut_env(),
        **spec_options,
    )
    world.start_cluster(spec)
    ready = world.gateway.ready()
    assert ready.ok, (
        f"expected the gateway to be ready once the cluster started, "
        f"it answered {ready.status}: {ready.error}"
    )


@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}"',
    example='Given a cluster with 2 workers serving demo version "1"',
)
def cluster_serving(world: World, workers: int, model: str, version: str) -> None:
    """Start a gateway and ``workers`` workers; ``model`` ``version`` is registered and becomes production."""
    _start(world, workers, model, version)


@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}" '
    "and a heartbeat every {seconds:g} seconds",
    example='Given a cluster with 1 worker serving demo version "1" and a heartbeat every 0.3 seconds',
)
def cluster_serving_heartbeat(world: World, workers: int, model: str, version: str, seconds: float) -> None:
    """Like the cluster step, with a short heartbeat interval so that expiry happens within a scenario."""
    _start(world, workers, model, version, heartbeat=seconds)
