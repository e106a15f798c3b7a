"""Multi-version serving: several versions loaded on the same workers, each answering for itself; unloading
one frees its memory, measured from outside the worker (``/proc/<pid>/status`` of its process, also for a
container); a load past the worker's memory budget is refused with 507. Sizes are decimal MB."""

from __future__ import annotations

import time

from fixtures.large_models import large_model
from harness.drivers.worker import WorkerProbe
from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._routing import state

MB = 1_000_000
#: After an unload, how long the memory may take to leave the process (the session is released once the
#: worker's last request on it is done).
SETTLE_S = 1.0


def _register(world: World, model: str, version: str, uri: str, parent: str | None = None) -> None:
    answer = world.gateway.register_version(model, uri, version=version, parent_version=parent)
    assert answer.ok, (
        f"expected the gateway to register {model} version {version!r}: {answer.status} {answer.error}"
    )


@given(
    "{model:w} versions {versions:Versions} are registered in the catalog",
    example='Given demo versions "2" and "3" are registered in the catalog',
    needs=("workers", "admin"),
)
def register_versions(world: World, model: str, versions: tuple[str, ...]) -> None:
    """Register already built artifacts as versions (none of them production)."""
    for version in versions:
        artifact = world.artifacts.get((model, version))
        assert artifact is not None, f"no artifact built for {model} version {version!r}"
        _register(world, model, version, artifact.artifact_uri)


@given(
    "large {model:w} versions {versions:Versions} of {mb:d} MB each are registered in the catalog",
    example='Given large demo versions "4", "5" and "6" of 60 MB each are registered in the catalog',
    needs=("workers", "admin"),
)
def register_large(world: World, model: str, versions: tuple[str, ...], mb: int) -> None:
    """Models whose weights really take ``mb`` MB in memory, each with its own weights (they answer
    differently), registered through the admin API."""
    for version in versions:
        artifact = world.build_artifact(
            model, version, lambda root, v=version: large_model(root, model, v, mb * MB, seed=int(v))
        )
        _register(world, model, version, artifact.artifact_uri)


def _rss(world: World) -> dict[str, int]:
    return {w.name: world.memory_usage(w.name) for w in world.running_workers()}


def _load(world: World, model: str, version: str) -> None:
    answer = world.gateway.load_version(model, version)
    state(world).values[("load", version)] = answer
    return answer


@when(
    "I load {model:w} versions {versions:Versions} alongside production",
    example='When I load demo versions "2" and "3" alongside production',
    needs=("workers", "admin"),
)
def load_versions(world: World, model: str, versions: tuple[str, ...]) -> None:
    """Ask the gateway to load each version on every worker serving the model (production keeps serving).
    The workers' resident memory is measured before and after."""
    before = _rss(world)
    for version in versions:
        answer = _load(world, model, version)
        assert answer.ok, (
            f"expected {model} version {version!r} to load, the gateway answered {answer.status}: "
            f"{answer.error}"
        )
    time.sleep(SETTLE_S)
    state(world).values["rss_load"] = (versions, before, _rss(world))


@when(
    'I try to load {model:w} version "{version}" alongside production',
    example='When I try to load demo version "5" alongside production',
    needs=("workers", "admin"),
)
def try_load(world: World, model: str, version: str) -> None:
    """Like loading, but the answer is judged by a later step (it may be refused)."""
    _load(world, model, version)


@then(
    'the load of {model:w} version "{version}" is refused with 507, naming the memory budget',
    example='Then the load of demo version "5" is refused with 507, naming the memory budget',
    needs=("workers", "admin"),
)
def load_refused(world: World, model: str, version: str) -> None:
    """The load tried before was answered 507, the message names the model and the budget in bytes, and
    every worker (asked itself) still holds no more than its budget."""
    answer = state(world).values.get(("load", version))
    assert answer is not None, f"no load of {model} version {version!r} was tried"
    budget = str(world.spec.memory_budget if world.spec else 0)
    assert answer.status == 507, (
        f"expected 507 (over the memory budget), the gateway answered {answer.status}: {answer.error}"
    )
    assert budget in (answer.error or "") and model in (answer.error or ""), (
        f"expected the refusal to name {model} and the budget ({budget} bytes): {answer.error!r}"
    )
    for info in world.running_workers():  # each worker's own account: within its budget after the refusal
        status = WorkerProbe(info.name, info.url).status()
        assert status is not None, f"{info.name} did not answer its status"
        used = int(status.get("memory_used", 0))
        assert used <= int(budget), f"{info.name} holds {used} bytes of models, over its budget of {budget}"


def _held(world: World, model: str) -> dict[str, dict[str, int]]:
    """worker name -> {version: memory it reports for it} (READY versions only)."""
    out = {}
    for info in world.running_workers():
        status = WorkerProbe(info.name, info.url).status()
        assert status is not None, f"{info.name} did not answer its status"
        out[info.name] = {
            str(m["version"]): int(m.get("size_bytes", 0))
            for m in status.get("models", [])
            if m.get("name") == model and m.get("state", "READY") == "READY"
        }
    return out


@then(
    "every worker holds {model:w} versions {versions:Versions} and reports the memory of each",
    example='Then every worker holds demo versions "1", "2" and "3" and reports the memory of each',
    needs=("workers", "admin"),
)
def workers_hold(world: World, model: str, versions: tuple[str, ...]) -> None:
    """Each running worker (asked itself) holds exactly these versions, each with a memory figure equal to
    the artifact size the catalog recorded."""
    sizes = {str(v["version"]): int(v["size_bytes"]) for v in world.gateway.versions(model)}
    for name, held in _held(world, model).items():
        assert set(held) == set(versions), f"{name} holds versions {sorted(held)}, expected {list(versions)}"
        wrong = {v: m for v, m in held.items() if m != sizes.get(v)}
        assert not wrong, f"{name} reports memory {wrong} for versions whose artifacts take {sizes}"
        print(f"{name}: " + ", ".join(f"v{v} {m / MB:.1f} MB" for v, m in sorted(held.items())))


@then(
    "the resident memory of every worker grew by at least {pct:d} % of what it reports for the versions "
    "loaded",
    example="Then the resident memory of every worker grew by at least 80 % of what it reports for the "
    "versions "
    "loaded",
    needs=("workers", "admin", "memory"),
)
def rss_grew(world: World, pct: int) -> None:
    """RSS after the loads minus before, per worker, against the sum of the memory it reports for them."""
    versions, before, after = state(world).values["rss_load"]
    for name, held in _held(world, _model_of(world)).items():
        reported = sum(held.get(v, 0) for v in versions)
        grew = after[name] - before[name]
        print(f"{name}: RSS +{grew / MB:.1f} MB for {reported / MB:.1f} MB reported")
        assert grew >= reported * pct / 100, (
            f"{name}'s RSS grew by {grew / MB:.1f} MB, reported {reported / MB:.1f} MB"
        )


@when(
    'I unload {model:w} version "{version}"',
    example='When I unload demo version "5"',
    needs=("workers", "admin"),
)
def unload(world: World, model: str, version: str) -> None:
    """Ask the gateway to unload the version everywhere; the workers' resident memory and the memory they
    report for it are taken before, the memory again after the unload settled."""
    reported = {name: held.get(version, 0) for name, held in _held(world, model).items()}
    before = _rss(world)
    answer = world.gateway.unload_version(model, version)
    assert answer.ok, (
        f"expected the unload of {model} version {version!r} to succeed: {answer.status} {answer.error}"
    )
    time.sleep(SETTLE_S)
    state(world).values["rss_unload"] = (version, reported, before, _rss(world))


@then(
    "the resident memory of every worker dropped by at least {pct:d} % of what it reported for version "
    '"{version}"',
    example="Then the resident memory of every worker dropped by at least 80 % of what it reported for "
    'version "5"',
    needs=("workers", "admin", "memory"),
)
def rss_dropped(world: World, pct: int, version: str) -> None:
    """RSS before the unload minus RSS now, per worker, against the memory it reported for that version
    (and never more than twice that: something else moved). Printed per worker."""
    unloaded, reported, before, _ = state(world).values["rss_unload"]
    after = _rss(world)
    assert unloaded == version, f"the last unload was of version {unloaded!r}, not {version!r}"
    for name, size in reported.items():
        assert size > 0, f"{name} reported no memory for version {version!r} before the unload"
        dropped = before[name] - after[name]
        print(f"{name}: RSS -{dropped / MB:.1f} MB on unloading v{version} ({size / MB:.1f} MB reported)")
        assert dropped >= size * pct / 100, (
            f"{name}'s RSS dropped by {dropped / MB:.1f} MB on unloading version {version!r}, which it "
            "said took "
            f"{size / MB:.1f} MB (expected at least {pct} % of that freed)"
        )
        assert dropped <= 2 * size, (
            f"{name}'s RSS dropped by {dropped / MB:.1f} MB: more than the version can explain"
        )


def _model_of(world: World) -> str:
    models = {m for (m, _) in world.artifacts}
    assert len(models) == 1, f"expected one model in this scenario, found {sorted(models)}"
    return models.pop()
