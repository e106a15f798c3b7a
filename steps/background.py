"""Actions that run in the background while the scenario goes on, and how they ended.

``When I start swapping demo to version "2"`` sends the swap from a thread and returns at once, so that
the next steps (a partition, a kill, a load) happen *during* the swap. The swap's window is measured as
for a blocking swap (from 0.2 s before the request until 1 s after the answer, under load), and every
step that judges the swap (``the swap of demo succeeds``, ``during the swap ...``) first waits for it to
end. ``Then the swap of demo finishes within 5 seconds`` judges how long the gateway took to answer.
Retraining is background by nature (the trainer starts it on drift): its window is the trainer's run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import parse
import pytest

from harness import trace
from harness.drivers.background import BackgroundCall
from harness.drivers.gateway import ROLLOUT_TIMEOUT_S, Answer
from harness.steps_registry import parse_type, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import (
    WINDOW_WAITERS,
    assert_computed,
    describe,
    inference_in,
    kept_answer,
    poll,
    window_bounds,
)
from steps.cluster_plan import require_setup
from steps.swap import REQUESTED, close_window, confirm_outcome, open_window

#: How long a step judging a background action waits for it to end: the gateway's own bound on a swap,
#: then the window's tail and the samples gathered after it.
END_WAIT_S = ROLLOUT_TIMEOUT_S + 90.0
#: How long the trainer may take to start a retraining run once drifted traffic flows, and to end it.
RUN_START_WAIT_S = 90.0
RUN_END_WAIT_S = 90.0
#: At teardown, how long to let a background action still running finish before the services go.
TEARDOWN_WAIT_S = 5.0

ACTIONS = ("swap", "rollback", "retraining")


@parse_type("Action")
@parse.with_pattern("|".join(ACTIONS))
def parse_action(text: str) -> str:
    """``swap`` / ``rollback`` (an admin action through the gateway) / ``retraining`` (the trainer's run)."""
    return text


@dataclass
class Running:
    """An admin action sent from a thread, and the step that started it."""

    window: str
    started_by: str  # the step that started it, "text (feature:line)"
    call: BackgroundCall[Answer]


RUNNING = pytest.StashKey[dict[str, Running]]()


def _running(world: World, window: str) -> Running | None:
    return world.stash.get(RUNNING, {}).get(window)


def _start(world: World, window: str, call: Callable[[], Answer]) -> None:
    """Open the window now, send the action from a thread, close the window when it answers."""
    current = _running(world, window)
    assert current is None or current.call.done.is_set(), (
        f"a {window} is still running (started by {current.started_by}); judge it before starting another"
    )
    record = trace.current()
    started_by = f"'{record.text}' ({record.location})" if record is not None else "a step"
    open_window(world, window)
    sent = BackgroundCall.start(
        f"the {window}", call, on_answer=lambda answer: close_window(world, window, answer)
    )
    world.stash.setdefault(RUNNING, {})[window] = Running(window, started_by, sent)
    world.defer(f"let go of the background {window}", lambda: sent.abandon(TEARDOWN_WAIT_S))


def _await(world: World, window: str) -> None:
    """A window waiter (see ``steps._support.await_window``): the background action's end, if any."""
    action = _running(world, window)
    if action is None:
        return
    finished = action.call.wait(END_WAIT_S)
    assert finished, (
        f"the {window} started by {action.started_by} has not ended after {END_WAIT_S:g} s "
        f"({'answered' if action.call.answered_at else 'no answer from the gateway yet'})"
    )
    if action.call.error is not None:
        raise AssertionError(f"the {window} started by {action.started_by} broke: {action.call.error}")


WINDOW_WAITERS.append(_await)


# -- starting actions ----------------------------------------------------------------------------------
@when(
    'I start swapping {model:w} to version "{version}"',
    example='When I start swapping demo to version "2"',
    needs=("admin",),
)
def start_swap(world: World, model: str, version: str) -> None:
    """Ask the gateway to hot-swap the model to ``version`` and go on at once: the next steps happen
    during the swap. The ``swap`` window is measured as for "When I swap ..."; every step that judges the
    swap waits for its answer first."""
    world.stash.setdefault(REQUESTED, {})["swap"] = version
    _start(world, "swap", lambda: world.gateway.swap(model, version))


@when("I start rolling back {model:w}", example="When I start rolling back demo", needs=("admin",))
def start_rollback(world: World, model: str) -> None:
    """Ask the gateway to roll the model back to its previous production version and go on at once (the
    ``rollback`` window, as for "When I roll back ...")."""
    world.stash.setdefault(REQUESTED, {}).pop("rollback", None)
    _start(world, "rollback", lambda: world.gateway.rollback(model))


# -- how they ended ------------------------------------------------------------------------------------
@then(
    "the {action:Action} of {model:w} finishes within {limit:Duration}",
    example="Then the swap of demo finishes within 5 seconds",
    needs=("admin",),
)
def finishes_within(world: World, action: str, model: str, limit: float) -> None:
    """The gateway answered the swap/rollback (successfully or not) within ``limit`` of the request; the
    retraining run ended (completed, rejected or failed) within ``limit`` of its start. Whether it
    succeeded is for the steps "the swap of demo succeeds" or "... is refused ..." to say."""
    if action == "retraining":
        run = _finished_run(world, model)
        took = float(run["ended_at"]) - float(run["started_at"])
        assert took <= limit, (
            f"expected the retraining of {model} to finish within {limit:g} s, run {run['id']} took "
            f"{took:.1f} s and ended {run['status']!r}: {run.get('reason')}"
        )
        return
    running = _running(world, action)
    if running is None:  # a blocking "When I swap ...": the answer knows how long it took
        answer = kept_answer(world, action)
        took = answer.latency_s
    else:
        sent = running.call
        sent.wait(sent.requested_at + limit - time.time())
        if sent.answered_at is None:
            raise AssertionError(
                f"expected the {action} of {model} started by {running.started_by} to finish within "
                f"{limit:g} s; the gateway has not answered after {time.time() - sent.requested_at:.1f} s"
            )
        took = sent.answered_at - sent.requested_at
        answer = kept_answer(world, action)
    outcome = "succeeded" if answer.ok else f"was refused ({answer.status}: {answer.error})"
    confirm_outcome(world, action, model, answer)
    assert took <= limit, (
        f"expected the {action} of {model} to finish within {limit:g} s; the gateway answered after "
        f"{took:.1f} s and the {action} {outcome}"
    )
    print(f"the {action} of {model} {outcome} after {took:.2f} s")


@then(
    "the {action:Action} of {model:w} is refused with an error naming {worker:WorkerName}",
    example="Then the swap of demo is refused with an error naming worker-2",
    needs=("admin",),
)
def refused_naming(world: World, action: str, model: str, worker: str) -> None:
    """The swap/rollback was refused (4xx/5xx) with an error that names the worker as the feature does
    (``worker-2 (id w-...)``) and the audit trail records the failure; a retraining run ended rejected
    or failed with a reason naming the worker."""
    if action == "retraining":
        run = _finished_run(world, model)
        assert run["status"] in ("rejected", "failed"), (
            f"expected the retraining of {model} to be refused, run {run['id']} ended {run['status']!r}"
        )
        assert worker in str(run.get("reason")), (
            f"expected the retraining's reason to name {worker}; it says {run.get('reason')!r}"
        )
        return
    answer = kept_answer(world, action)
    assert not answer.ok, (
        f"expected the {action} of {model} to be refused naming {worker}; it succeeded: {answer.body}"
    )
    error = answer.error or ""
    assert f"{worker} (id " in error, (
        f"expected the {action} error to name {worker} (as '{worker} (id ...)'); the gateway answered "
        f"{answer.status}: {error!r}"
    )
    audited = [
        e for e in world.gateway.audit() if e.get("action") == f"{action}_failed" and e.get("model") == model
    ]
    assert audited, f"expected the gateway's audit trail to record the failed {action} of {model}; none"
    confirm_outcome(world, action, model, answer)


@then(
    'the {action:Action} of {model:w} is refused saying "{text}"',
    example='Then the swap of demo is refused saying "catalog database unavailable"',
    needs=("admin",),
)
def refused_saying(world: World, action: str, model: str, text: str) -> None:
    """The swap/rollback was refused (4xx/5xx) with an error containing ``text``, whatever the cause (a
    worker, the catalog database ...); a retraining run ended rejected or failed with ``text`` in its
    reason."""
    if action == "retraining":
        run = _finished_run(world, model)
        assert run["status"] in ("rejected", "failed") and text in str(run.get("reason")), (
            f"expected the retraining of {model} refused saying {text!r}; run {run['id']} ended "
            f"{run['status']!r}: {run.get('reason')!r}"
        )
        return
    answer = kept_answer(world, action)
    assert not answer.ok, f"expected the {action} of {model} to be refused; it succeeded: {answer.body}"
    assert text in (answer.error or ""), (
        f"expected the {action} error to say {text!r}; the gateway answered {answer.status}: {answer.error!r}"
    )
    confirm_outcome(world, action, model, answer)


def _finished_run(world: World, model: str) -> dict[str, Any]:
    """The latest retraining run of ``model``, once it ended (waiting for it to start, then to end); its
    start and end become the ``retraining`` window."""
    require_setup(world, "trainer")
    runs = poll(lambda: world.trainer.runs(model), bool, timeout=RUN_START_WAIT_S, interval=0.2)
    assert runs, f"no retraining run of {model} started within {RUN_START_WAIT_S:g} s"
    runs = poll(
        lambda: world.trainer.runs(model), lambda rs: rs[-1]["status"] != "running", timeout=RUN_END_WAIT_S
    )
    run = runs[-1]
    assert run["status"] != "running", (
        f"retraining run {run['id']} of {model} has not ended {RUN_END_WAIT_S:g} s after it was seen: {run}"
    )
    world.marks["retraining_started"] = float(run["started_at"])
    world.marks["retraining_ended"] = float(run["ended_at"])
    world.answers["retraining"] = run
    return run


# -- judging a window ----------------------------------------------------------------------------------
@then(
    "during the {window:w} at most {count:Requests} failed",
    example="Then during the swap at most 5 requests failed",
)
def at_most_failed(world: World, window: str, count: int) -> None:
    """Of the inference requests overlapping the window (``swap``, ``rollback``, ``retraining`` once judged,
    ``load``: since the load started), at most ``count`` got no 2xx answer; every successful one was
    computed by the version it names. The failures are printed, counted by status."""
    if window == "load":
        start, end = world.marks.get("load_started"), None
    else:
        start, end = window_bounds(world, window)
    answers = inference_in(world, start, end)
    assert answers, f"expected inference requests during the {window}, none were recorded"
    failed = [o for o in answers if not o.ok]
    statuses: dict[str, int] = {}
    for obs in failed:
        key = str(obs.status or "no answer")
        statuses[key] = statuses.get(key, 0) + 1
    print(f"during the {window}: {len(failed)} of {len(answers)} requests failed {statuses or ''}")
    assert len(failed) <= count, (
        f"expected at most {count} failed requests during the {window}; {len(failed)} of {len(answers)} "
        f"failed (by status: {statuses}): {describe(failed)}"
    )
    assert_computed(world, [o for o in answers if o.ok], f"during the {window}")
