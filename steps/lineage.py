"""Lineage of model versions: registered with a parent, queried by ancestor and descendant through the
gateway's admin API, an unknown parent refused."""

from __future__ import annotations

from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import keep_answer, kept_answer


def _register(world: World, model: str, version: str, parent: str):
    artifact = world.artifacts.get((model, version))
    assert artifact is not None, f"no artifact built for {model} version {version!r}"
    return world.gateway.register_version(
        model, artifact.artifact_uri, version=version, parent_version=parent
    )


@given(
    '{model:w} version "{version}" is registered in the catalog as a child of version "{parent}"',
    example='Given demo version "2" is registered in the catalog as a child of version "1"',
    needs=("admin",),
)
def register_child(world: World, model: str, version: str, parent: str) -> None:
    """Register a built artifact as a new version whose parent is ``parent`` (e.g. a fine-tuned model)."""
    answer = _register(world, model, version, parent)
    assert answer.ok, (
        f"expected {model} version {version!r} (parent {parent!r}) to register: {answer.status} "
        f"{answer.error}"
    )


@when(
    'I register {model:w} version "{version}" as a child of version "{parent}"',
    example='When I register demo version "4" as a child of version "9"',
    needs=("admin",),
)
def try_register_child(world: World, model: str, version: str, parent: str) -> None:
    """Like the Given, but the answer is judged by a later step (it may be refused)."""
    keep_answer(world, "registration", _register(world, model, version, parent))


@then(
    'the registration is refused because parent version "{parent}" is unknown',
    example='Then the registration is refused because parent version "9" is unknown',
    needs=("admin",),
)
def refused_unknown_parent(world: World, parent: str) -> None:
    """The registration kept by the When step was answered 404, naming the parent; the audit trail has no
    registration with that parent."""
    answer = kept_answer(world, "registration")
    assert answer.status == 404, (
        f"expected 404 for an unknown parent, the gateway answered {answer.status}: {answer.body}"
    )
    assert f"'{parent}'" in (answer.error or ""), (
        f"expected the error to name the parent {parent!r}: {answer.error!r}"
    )
    registered = [
        e
        for e in world.gateway.audit()
        if e.get("action") == "register_version" and (e.get("details") or {}).get("parent_version") == parent
    ]
    assert not registered, f"the refused version was audited as registered anyway: {registered}"


@then(
    'the catalog does not list {model:w} version "{version}"',
    example='Then the catalog does not list demo version "4"',
    needs=("admin",),
)
def not_listed(world: World, model: str, version: str) -> None:
    """The gateway's version list of the model has no such version (nothing half-registered)."""
    listed = [str(v["version"]) for v in world.gateway.versions(model)]
    assert version not in listed, f"expected no version {version!r} of {model}; the catalog lists {listed}"


@then(
    'the parent of {model:w} version "{version}" is "{parent}"',
    example='Then the parent of demo version "2" is "1"',
    needs=("admin",),
)
def parent_is(world: World, model: str, version: str, parent: str) -> None:
    """Both the version record and the lineage query name ``parent``."""
    record = {str(v["version"]): v for v in world.gateway.versions(model)}.get(version)
    assert record is not None, f"the catalog has no {model} version {version!r}"
    lineage = world.gateway.lineage(model, version)
    assert (record.get("parent_version"), lineage.get("parent")) == (parent, parent), (
        f"expected parent {parent!r} of {model} version {version!r}; the record says "
        f"{record.get('parent_version')!r}, the lineage {lineage}"
    )


@then(
    '{model:w} version "{version}" has no parent',
    example='Then demo version "1" has no parent',
    needs=("admin",),
)
def no_parent(world: World, model: str, version: str) -> None:
    """The lineage query names no parent and no ancestors."""
    lineage = world.gateway.lineage(model, version)
    assert lineage.get("parent") is None and lineage.get("ancestors") == [], f"expected no parent: {lineage}"


@then(
    'the ancestors of {model:w} version "{version}" are {versions:Versions}',
    example='Then the ancestors of demo version "3" are "2" and "1"',
    needs=("admin",),
)
def ancestors(world: World, model: str, version: str, versions: tuple[str, ...]) -> None:
    """Nearest first."""
    lineage = world.gateway.lineage(model, version)
    assert lineage.get("ancestors") == list(versions), f"expected ancestors {list(versions)}: {lineage}"


@then(
    'the descendants of {model:w} version "{version}" are {versions:Versions}',
    example='Then the descendants of demo version "1" are "2" and "3"',
    needs=("admin",),
)
def descendants(world: World, model: str, version: str, versions: tuple[str, ...]) -> None:
    """Breadth first (children before grandchildren)."""
    lineage = world.gateway.lineage(model, version)
    assert lineage.get("descendants") == list(versions), f"expected descendants {list(versions)}: {lineage}"
