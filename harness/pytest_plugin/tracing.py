"""Per-step statuses (for the Gherkin output) and the ``--step-trace`` file, from pytest-bdd's hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness import trace
from harness.pytest_plugin.state import ScenarioRecord, rel, run_state
from harness.snippets import short_location, undefined_step_message
from harness.steps_registry import load_step_library, settle


def _function_location(step_func: Callable[..., Any]) -> str:
    definition = getattr(step_func, "servingbdd_definition", None)
    if definition is not None:
        return short_location(definition.location)
    code = step_func.__code__
    return short_location(f"{code.co_filename}:{code.co_firstlineno}")


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    state = run_state(request.config)
    if state is not None:
        steps = [(s.keyword.strip(), s.name, s.line_number) for s in scenario.steps]
        state.scenarios[request.node.nodeid] = ScenarioRecord(steps)


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """A scenario whose steps all passed starts what its trailing setup steps described (a scenario made
    only of setup steps must still start its services); then the held trace records are written."""
    from harness.pytest_plugin.world import WORLD_KEY

    state = run_state(request.config)
    record = state.scenarios.get(request.node.nodeid) if state is not None else None
    world = request.node.stash.get(WORLD_KEY, None)
    try:
        if world is not None and record is not None and set(record.status.values()) == {"passed"}:
            settle(world)
    finally:
        trace.forget_deferred()
        if state is not None and state.trace is not None:
            state.trace.flush()


def pytest_bdd_before_step_call(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Callable[..., Any],
    **_: Any,
) -> None:
    state = run_state(request.config)
    if state is None:
        return
    location = f"{rel(request.config, feature.filename)}:{step.line_number}"
    context = trace.step(step.type, step.name, location, _function_location(step_func))
    state.active[request.node.nodeid] = (context, context.__enter__())


def _end_step(request: pytest.FixtureRequest, feature: Any, step: Any, step_func: Any, status: str) -> None:
    state = run_state(request.config)
    if state is None:
        return
    record = state.scenarios.get(request.node.nodeid)
    if record is not None:
        record.status[step.line_number] = status
    opened = state.active.pop(request.node.nodeid, None)
    if opened is None:  # failed before the call (argument parsing, fixtures): a record all the same
        location = f"{rel(request.config, feature.filename)}:{step.line_number}"
        function = _function_location(step_func) if step_func is not None else ""
        context = trace.step(step.type, step.name, location, function)
        opened = (context, context.__enter__())
    context, step_trace = opened
    step_trace.status = status
    context.__exit__(None, None, None)
    if record is not None:
        record.durations[step.line_number] = step_trace.duration_s
        record.functions[step.line_number] = step_trace.function
    if state.trace is not None:
        state.trace.write(step_trace)


def pytest_bdd_after_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, **_: Any
) -> None:
    _end_step(request, feature, step, step_func, "passed")


def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Any,
    exception: Exception,
    **_: Any,
) -> None:
    from harness.targets.base import CapabilityMissing

    if isinstance(exception, CapabilityMissing):  # found at run time: a skip, as at collection
        _end_step(request, feature, step, step_func, "skipped")
        pytest.skip(str(exception))
    _end_step(request, feature, step, step_func, "failed")
    location = f"{rel(request.config, feature.filename)}:{step.line_number}"
    if exception.args and isinstance(exception.args[0], str) and location not in exception.args[0]:
        # the failure names the step and where it is, in the feature's words
        exception.args = (
            f"{step.keyword} {step.name}  ({location})\n{exception.args[0]}",
            *exception.args[1:],
        )


def pytest_bdd_step_func_lookup_error(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, exception: Exception
) -> None:
    """Make the failure say which step, where, and what to paste into ``steps/``."""
    location = f"{rel(request.config, feature.filename)}:{step.line_number}"
    exception.args = (undefined_step_message(step.type, step.name, location, load_step_library()),)
    _end_step(request, feature, step, None, "undefined")
