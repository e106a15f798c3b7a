"""Small helpers shared by the step modules (window selection, load samples, judging outputs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from harness import waiting
from harness.drivers.v2 import Answer, request_inputs
from harness.observations import Observation
from harness.targets.base import TargetError, mismatches
from harness.world import World

T = TypeVar("T")

#: Observations that are inference answers (the admin calls, e.g. a refused swap, are not traffic).
INFER_MARK = "/infer"


def is_inference(obs: Observation) -> bool:
    return obs.source == "load" or INFER_MARK in obs.target


def poll(probe: Callable[[], T], done: Callable[[T], bool], timeout: float, interval: float = 0.1) -> T:
    """Call ``probe`` (which asks a service) until ``done(result)`` or ``timeout``; return the last result."""
    return waiting.poll(probe, done, timeout=timeout, interval=interval)


def wrong_outputs(world: World, model: str, answer: Answer, version: str | None = None) -> str | None:
    """Why ``answer``'s outputs are not what ``version`` (default: the version the answer names) computes
    for the request's inputs; None when they are, or when the target cannot know the right answers."""
    spec = world.model(model)
    label = version or answer.model_version
    if spec.expected is None or label is None or answer.request is None:
        return None
    inputs = request_inputs(answer.request)
    try:
        expected = spec.expected(label, inputs)
    except (KeyError, TargetError):
        return None
    problems = mismatches(expected, answer.outputs, spec.tolerance)
    if not problems:
        return None
    request_id = answer.request.get("id")
    return (
        f"request {request_id} answered as {model} version {answer.model_version!r} did not compute what "
        f"version {label!r} computes: {'; '.join(problems)} (input {inputs}, outputs {answer.outputs})"
    )


def miscomputed(world: World, model: str, observations: list[Observation]) -> list[str]:
    """For each successful answer that carries outputs, whether they are what the version it names
    computes for its inputs; the mismatches, described (empty when all agree or nothing can be judged)."""
    spec = world.model(model)
    if spec.expected is None:
        return []
    expected_by: dict[tuple[str, str], dict[str, list[float]] | None] = {}
    problems = []
    for obs in observations:
        if not obs.ok or obs.outputs is None or obs.inputs is None or obs.model_version is None:
            continue
        key = (obs.model_version, repr(obs.inputs))
        if key not in expected_by:
            try:
                expected_by[key] = spec.expected(obs.model_version, obs.inputs)
            except (KeyError, TargetError):
                expected_by[key] = None
        expected = expected_by[key]
        if expected is None:
            continue
        outputs = [{"name": name, "data": data} for name, data in obs.outputs.items()]
        wrong = mismatches(expected, outputs, spec.tolerance)
        if wrong:
            problems.append(
                f"request {obs.request_id} answered as version {obs.model_version!r}: {'; '.join(wrong)} "
                f"(inputs {obs.inputs})"
            )
    return problems


def model_of(obs: Observation) -> str | None:
    """The model an inference observation was for (from its target, ``POST /v2/models/<m>/...``)."""
    parts = obs.target.split("/")
    return parts[3] if len(parts) > 3 and parts[1:3] == ["v2", "models"] else None


def assert_computed(world: World, observations: list[Observation], what: str) -> None:
    """Every answer among ``observations`` that carries outputs was computed by the version it names."""
    by_model: dict[str, list[Observation]] = {}
    for obs in observations:
        model = model_of(obs)
        if model is not None:
            by_model.setdefault(model, []).append(obs)
    for model, group in by_model.items():
        problems = miscomputed(world, model, group)
        assert not problems, (
            f"{len(problems)} of {len(group)} answers {what} were not computed by the version they name; "
            f"e.g. {problems[0]}"
        )


def finish_load(world: World) -> None:
    """Stop the running load (if any): the Then steps judge a finished history. Idempotent."""
    if world.load is not None and "load_stopped" not in world.marks:
        world.load.stop()
        world.mark("load_stopped")


#: Waiters for windows that close in the background (an action started with "When I start ..."): each
#: returns once the window ``window`` is closed, or at once when it knows nothing of it.
WINDOW_WAITERS: list[Callable[[World, str], None]] = []


def await_window(world: World, window: str) -> None:
    """Wait until the action behind ``window`` (run in the background) has finished and closed it."""
    for waiter in WINDOW_WAITERS:
        waiter(world, window)


def window_bounds(world: World, window: str) -> tuple[float, float]:
    """The instants a When step marked as ``<window>_started`` / ``<window>_ended``."""
    await_window(world, window)
    return world.window(f"{window}_started", f"{window}_ended")


def inference_in(world: World, start: float | None, end: float | None) -> list[Observation]:
    """Inference answers overlapping ``[start, end]``: the load generator's raw samples (read back from
    the files the Locust process wrote) and the driver's own requests."""
    finish_load(world)
    load_samples = world.load.samples() if world.load is not None else []
    out = [o for o in world.observations.select(start=start, end=end) if is_inference(o)]
    for obs in load_samples:
        if (start is None or obs.ended >= start) and (end is None or obs.started <= end):
            out.append(obs)
    return sorted(out, key=lambda o: o.started)


def describe(observations: list[Observation], limit: int = 5) -> str:
    """A short human list of answers for assertion messages."""
    shown = [
        f"{o.target or 'request'} -> {o.status or 'no answer'} {o.error or ''}".strip()
        for o in observations[:limit]
    ]
    more = len(observations) - limit
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def keep_answer(world: World, window: str, answer: Any) -> None:
    """Keep the answer of an admin action (swap, rollback): the admin API is not traffic, so the driver
    does not record it as an observation; the Then steps judge the answer kept here."""
    world.answers[window] = answer


def kept_answer(world: World, window: str) -> Any:
    await_window(world, window)
    answer = world.answers.get(window)
    assert answer is not None, f"no {window} was attempted in this scenario (missing a 'When I ...' step?)"
    return answer
