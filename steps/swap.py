"""Steps that register model versions, hot-swap and roll back through the gateway's admin API."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest

from fixtures.models import corrupt_artifact
from harness.drivers.gateway import Answer
from harness.load.runner import LoadRun
from harness.steps_registry import given, then, when
from harness.world import World
from steps._support import keep_answer, kept_answer

#: Inference samples the load must add after a swap, so that "after the swap" has evidence.
SAMPLES_AFTER_SWAP = 100

#: A swap/rollback window runs from the request until this long after the gateway's answer: the old
#: version's last in-flight requests and the workers' unloads fall inside it, and a swap that takes
#: ~0.1 s leaves enough requests in the window to judge a p99 honestly.
WINDOW_TAIL_S = 1.0

#: ... and opens this long before the request: the transition includes the old version's last answers,
#: which with paced users (few requests in flight at any instant) may all end just before a ~10 ms swap.
WINDOW_LEAD_S = 0.2


def _register(world: World, model: str, version: str, artifact_uri: str) -> None:
    answer = world.gateway.register_version(model, artifact_uri, version=version)
    assert answer.ok, (
        f"expected the gateway to register {model} version {version!r} ({artifact_uri}), "
        f"it answered {answer.status}: {answer.error}"
    )


@given(
    '{model:w} version "{version}" is registered in the catalog',
    example='Given demo version "2" is registered in the catalog',
    needs=("admin",),
)
def register_version(world: World, model: str, version: str) -> None:
    """Register an already built artifact as a new version through the admin API (not yet production)."""
    artifact = world.artifacts.get((model, version))
    assert artifact is not None, (
        f"no artifact built for {model} version {version!r}; build it in an earlier step"
    )
    _register(world, model, version, artifact.artifact_uri)


@given(
    '{model:w} version "{version}" is registered with a {problem:w} artifact',
    example='Given demo version "3" is registered with a corrupt artifact',
    needs=("admin",),
)
def register_bad_version(world: World, model: str, version: str, problem: str) -> None:
    """Register a version whose artifact is ``corrupt`` (not ONNX) or ``missing`` (deleted after)."""
    root = world.reference.artifact_root
    if problem == "corrupt":
        artifact = corrupt_artifact(root, model, version)
        _register(world, model, version, artifact.artifact_uri)
    elif problem == "missing":
        source = next((a for (m, _), a in world.artifacts.items() if m == model), None)
        assert source is not None, f"no artifact of {model} built yet to register as version {version!r}"
        uri = f"{model}/{version}/model.onnx"
        (root / uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.path, root / uri)
        _register(world, model, version, uri)
        world.delete_artifact(uri)  # the artifact store lost it after registration
    else:
        raise AssertionError(f"unknown artifact problem {problem!r}: use 'corrupt' or 'missing'")


def _running_load(world: World) -> LoadRun | None:
    """The load, unless a Then step already stopped it to judge its history."""
    return world.load if "load_stopped" not in world.marks else None


def open_window(world: World, window: str) -> None:
    """Mark the start of the window ``<window>``: under load, once the load is flowing, and
    ``WINDOW_LEAD_S`` before the request."""
    load = _running_load(world)
    if load is not None:
        load.wait_for_samples(len(load.samples()) + 20, timeout=30.0)  # the load is flowing right now
    world.mark(f"{window}_started")
    if load is not None:
        world.marks[f"{window}_started"] -= WINDOW_LEAD_S


def close_window(world: World, window: str, answer: Answer) -> None:
    """Keep the action's answer and mark the end of its window: under load ``WINDOW_TAIL_S`` after the
    answer, then wait for samples "after" it."""
    load = _running_load(world)
    if load is not None:
        time.sleep(WINDOW_TAIL_S)  # the load keeps running through the window's tail
    world.mark(f"{window}_ended")
    keep_answer(world, window, answer)
    if load is not None:
        load.wait_for_samples(len(load.samples()) + SAMPLES_AFTER_SWAP, timeout=60.0)


#: The version each admin action asked for ("swap" -> "2"); a rollback names none.
REQUESTED = pytest.StashKey[dict[str, str]]()


def confirm_outcome(world: World, window: str, model: str, answer: Answer) -> None:
    """The gateway's state agrees with its answer to the action: a swap/rollback it answered as done left
    the version it named in production; one it refused did not put the requested version there."""
    production = world.gateway.production(model)
    if answer.ok:
        to_version = answer.body.get("to_version") if isinstance(answer.body, dict) else None
        assert production == to_version, (
            f"the gateway answered that the {window} of {model} to version {to_version!r} was done, yet its "
            f"production version is {production!r}"
        )
        return
    requested = world.stash.get(REQUESTED, {}).get(window)
    assert requested is None or production != requested, (
        f"the gateway refused the {window} of {model} to version {requested!r} ({answer.status}: "
        f"{answer.error}), yet its production version is {production!r}"
    )


def admin_action(world: World, window: str, call: Callable[[], Answer]) -> None:
    """Run an admin action (swap/rollback) as the window ``<window>``: under load, from ``WINDOW_LEAD_S``
    before the request until ``WINDOW_TAIL_S`` after the answer; then gather samples for "after"."""
    open_window(world, window)
    answer = call()
    close_window(world, window, answer)


@when('I swap {model:w} to version "{version}"', example='When I swap demo to version "2"', needs=("admin",))
def swap(world: World, model: str, version: str) -> None:
    """Ask the gateway to hot-swap the model's production version. Under load, the ``swap`` window runs
    from 0.2 s before the request until 1 s after the gateway's answer."""
    world.stash.setdefault(REQUESTED, {})["swap"] = version
    admin_action(world, "swap", lambda: world.gateway.swap(model, version))


@when("I roll back {model:w}", example="When I roll back demo", needs=("admin",))
def rollback(world: World, model: str) -> None:
    """Ask the gateway to roll the model back to its previous production version. Under load, the
    ``rollback`` window runs from 0.2 s before the request until 1 s after the gateway's answer."""
    world.stash.setdefault(REQUESTED, {}).pop("rollback", None)
    admin_action(world, "rollback", lambda: world.gateway.rollback(model))


@given(
    '{model:w} has been swapped to version "{version}"',
    example='Given demo has been swapped to version "2"',
    needs=("admin",),
)
def swapped_before(world: World, model: str, version: str) -> None:
    """Swap before the scenario's main action, and require that it worked."""
    answer = world.gateway.swap(model, version)
    assert answer.ok, (
        f"expected the swap of {model} to version {version!r} to succeed, got {answer.status}: {answer.error}"
    )


def _audited(world: World, action: str, model: str) -> list[dict]:
    """The gateway's audit entries for ``action`` on ``model``."""
    return [e for e in world.gateway.audit() if e.get("action") == action and e.get("model") == model]


@then("the {window:w} of {model:w} succeeds", example="Then the swap of demo succeeds", needs=("admin",))
def action_succeeded(world: World, window: str, model: str) -> None:
    """The gateway answered the swap/rollback with 2xx and wrote it to its audit trail."""
    answer = kept_answer(world, window)
    assert answer.ok, (
        f"expected the {window} to succeed, the gateway answered {answer.status}: {answer.error}"
    )
    to_version = answer.body.get("to_version") if isinstance(answer.body, dict) else None
    assert to_version is not None, f"the gateway's {window} answer does not say which version: {answer.body}"
    entries = [
        e for e in _audited(world, window, model) if (e.get("details") or {}).get("to_version") == to_version
    ]
    assert entries, (
        f"expected the gateway's audit trail to record the {window} of {model} to version {to_version!r}; "
        f"its {window} entries: {_audited(world, window, model)}"
    )


@then(
    'the {window:w} of {model:w} is refused with an error saying "{text}"',
    example='Then the swap of demo is refused with an error saying "not a valid ONNX model"',
    needs=("admin",),
)
def action_refused(world: World, window: str, model: str, text: str) -> None:
    """The gateway refused the swap/rollback (4xx/5xx), said why and which worker, and audited the failure."""
    answer = kept_answer(world, window)
    assert not answer.ok, f"expected the {window} to be refused, the gateway answered {answer.status}"
    error = answer.error or ""
    assert text in error, (
        f"expected the {window} error to say {text!r}; the gateway answered {answer.status}: {error!r}"
    )
    assert "worker" in error, f"expected the {window} error to name the worker that failed; it said {error!r}"
    failed = _audited(world, f"{window}_failed", model)
    assert failed, f"expected the gateway's audit trail to record the failed {window} of {model}; it has none"
