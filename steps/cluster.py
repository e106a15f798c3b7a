"""Steps that prepare model versions and start what serves them."""

from __future__ import annotations

from typing import Any

from harness.steps_registry import given
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps.cluster_plan import (
    MB,
    OPTION_NEEDS,
    add_to_plan,
    drift_trainer,
    provided_by_table,
    table_options,
)


@given(
    "the {model:w} model with versions {versions:Versions}",
    example='Given the demo model with versions "1" and "2"',
    setup=True,
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
    """Describe a reference cluster of ``workers`` workers with ``model`` ``version`` in production;
    ``options`` are :class:`ClusterSpec` fields (heartbeat_interval, upstream_timeout, fault_links,
    memory_budget, trainer) or ``postgres``. It starts before the scenario's first step that acts, with
    the options of every setup step (:mod:`steps.cluster_plan`)."""
    add_to_plan(world, model, version, workers=workers, **options)


@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}"',
    example='Given a cluster with 2 workers serving demo version "1"',
    needs=("workers",),
    setup=True,
)
def cluster_serving(world: World, workers: int, model: str, version: str) -> None:
    """A gateway and ``workers`` workers; ``model`` ``version`` is registered and becomes production.
    It starts before the first step that acts, so the add-on steps below (links that accept faults, a
    heartbeat, a trainer ...) may follow it; once started, the gateway must be ready."""
    start_cluster(world, workers, model, version)


@given(
    'a cluster serving {model:w} version "{version}" with:',
    example='Given a cluster serving demo version "1" with:\n'
    "  | workers           | 2                          |\n"
    "  | heartbeat         | 0.3 seconds                |\n"
    "  | upstream deadline | 1 second                   |\n"
    "  | links             | accept network faults      |\n"
    "  | trainer           | checking every 0.5 seconds |\n"
    "  | memory budget     | 100 MB                     |\n"
    "  | catalog           | PostgreSQL                 |",
    needs=("workers",),
    setup=True,
    provides=provided_by_table,
)
def cluster_with_table(world: World, model: str, version: str, datatable: list[list[str]]) -> None:
    """A cluster with any combination of options, one ``| option | value |`` row each (an optional
    ``| option | value |`` header row); options left out keep their defaults. The options and the values
    they accept are listed under "Cluster options" in docs/steps.md; an unknown option or value fails
    the step."""
    fields = table_options(datatable)
    workers = fields.pop("workers", 1)
    world.require(*(OPTION_NEEDS[f] for f, value in fields.items() if f in OPTION_NEEDS and value))
    start_cluster(world, workers, model, version, **fields)


@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}" '
    "and a heartbeat every {seconds:g} seconds",
    example='Given a cluster with 1 worker serving demo version "1" and a heartbeat every 0.3 seconds',
    needs=("workers",),
    setup=True,
)
def cluster_serving_heartbeat(world: World, workers: int, model: str, version: str, seconds: float) -> None:
    """Like the cluster step, with a short heartbeat interval so that expiry happens within a scenario."""
    start_cluster(world, workers, model, version, heartbeat_interval=seconds)


# -- add-on setup steps: each adds one option to the scenario's cluster, before or after its step --------
@given(
    "the cluster's links accept network faults",
    example="Given the cluster's links accept network faults",
    needs=("workers", "links"),
    setup=True,
    provides=("links",),
)
def links_accept_faults(world: World) -> None:
    """Put an in-path proxy on every gateway-worker link (a proxy in the test process on the local
    backend, a proxy container per link on docker), so that the network steps can cut or slow a link."""
    add_to_plan(world, fault_links=True)


@given(
    "the cluster has a heartbeat every {seconds:g} seconds",
    example="Given the cluster has a heartbeat every 0.3 seconds",
    needs=("workers",),
    setup=True,
)
def heartbeat_every(world: World, seconds: float) -> None:
    """Workers report to the gateway every ``seconds``; the gateway expires one after 3 missed reports."""
    add_to_plan(world, heartbeat_interval=seconds)


@given(
    "the cluster has an upstream deadline of {deadline:Duration}",
    example="Given the cluster has an upstream deadline of 1 second",
    needs=("workers",),
    setup=True,
)
def upstream_deadline(world: World, deadline: float) -> None:
    """The gateway's deadline for every call to a worker (inference); past it the client gets a 504."""
    add_to_plan(world, upstream_timeout=deadline)


@given(
    "the cluster's workers have a memory budget of {mb:d} MB",
    example="Given the cluster's workers have a memory budget of 100 MB",
    needs=("workers", "memory"),
    setup=True,
)
def memory_budget(world: World, mb: int) -> None:
    """Each worker refuses (507) a model load that would take its models past ``mb`` decimal MB."""
    add_to_plan(world, memory_budget=mb * MB)


@given(
    "the cluster's workers have no memory budget",
    example="Given the cluster's workers have no memory budget",
    needs=("workers", "memory"),
    setup=True,
)
def no_memory_budget(world: World) -> None:
    """The workers' own budget is off: only a kernel memory limit can stop a load."""
    add_to_plan(world, memory_budget=0)


@given(
    "the cluster has a drift trainer checking every {seconds:g} seconds",
    example="Given the cluster has a drift trainer checking every 0.5 seconds",
    needs=("workers", "trainer"),
    setup=True,
    provides=("trainer",),
)
def with_trainer(world: World, seconds: float) -> None:
    """A trainer service that judges drift every ``seconds`` over the gateway's feature log (windows of 600
    rows, judged from 300) and retrains, registers and swaps in a better model by itself."""
    add_to_plan(world, trainer=drift_trainer(seconds))


@given(
    "the cluster keeps its catalog in a PostgreSQL server",
    example="Given the cluster keeps its catalog in a PostgreSQL server",
    needs=("workers", "catalog-db"),
    setup=True,
    provides=("postgres",),
)
def catalog_in_postgres(world: World) -> None:
    """A PostgreSQL server (harness-run, on a free port; a container on docker) holds the gateway's
    catalog instead of a SQLite file; the database steps can then kill and restart it."""
    add_to_plan(world, postgres=True)
