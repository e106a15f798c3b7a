"""Steps that prepare model versions and start what serves them."""

from __future__ import annotations

from typing import Any

from harness.steps_registry import given
from harness.targets.reference import ClusterSpec
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)


@given(
    "the {model:w} model with versions {versions:Versions}",
    example='Given the demo model with versions "1" and "2"',
)
def model_versions(world: World, model: str, versions: tuple[str, ...]) -> None:
    """Make the model's versions available to serve: the reference cluster builds real ONNX artifacts
    (one per version) in the scenario's artifact root; another target builds its own artifacts, or (an
    external deployment) must declare them in its profile."""
    world.prepare_models(model, versions)
    spec = world.model(model)
    missing = [v for v in versions if v not in spec.versions]
    assert not missing, f"expected {model} versions {list(versions)} to be available, missing {missing}"


@given(
    'the target serves {model:w} version "{version}"',
    example='Given the target serves demo version "1"',
)
def target_serves(world: World, model: str, version: str) -> None:
    """Start the target serving the model with ``version`` loaded (the reference cluster: a gateway and one
    worker; MLServer: one server), or check that an external deployment does; then it must say it is
    ready and that the model version is ready."""
    world.serve(model, version)
    ready = world.v2.ready()
    assert ready.ok, f"expected the server to be ready once it serves {model}, it answered {ready.status}"


def start_cluster(world: World, workers: int, model: str, version: str, **options: Any) -> None:
    """A reference cluster of ``workers`` workers with ``model`` ``version`` in production; ``options`` are
    :class:`ClusterSpec` fields (heartbeat_interval, upstream_timeout, fault_links, db, trainer, ...)."""
    world.require("workers")
    artifact = world.artifacts.get((model, version))
    assert artifact is not None, (
        f"no artifact for {model} version {version!r}: add a step like "
        f"'Given the {model} model with versions \"{version}\"' before starting the cluster"
    )
    spec = ClusterSpec(
        workers=workers,
        artifact_root=world.reference.artifact_root,
        preload=[(model, version, artifact.artifact_uri)],
        **options,
    )
    world.start_cluster(spec)
    if workers == 0:  # nothing can serve yet: a step adds the workers (e.g. to providers' pools)
        return
    ready = world.v2.ready()
    assert ready.ok, (
        f"expected the gateway to be ready once the cluster started, it answered {ready.status}: "
        f"{ready.error}"
    )


@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}"',
    example='Given a cluster with 2 workers serving demo version "1"',
    needs=("workers",),
)
def cluster_serving(world: World, workers: int, model: str, version: str) -> None:
    """Start a gateway and ``workers`` workers; ``model`` ``version`` is registered and becomes production."""
    start_cluster(world, workers, model, version)


@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}" '
    "and a heartbeat every {seconds:g} seconds",
    example='Given a cluster with 1 worker serving demo version "1" and a heartbeat every 0.3 seconds',
    needs=("workers",),
)
def cluster_serving_heartbeat(world: World, workers: int, model: str, version: str, seconds: float) -> None:
    """Like the cluster step, with a short heartbeat interval so that expiry happens within a scenario."""
    start_cluster(world, workers, model, version, heartbeat_interval=seconds)
