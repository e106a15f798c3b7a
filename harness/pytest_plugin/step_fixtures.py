"""The step library registered with pytest-bdd: importing this module does it.

pytest-bdd's decorators put each step's fixture into the namespace of the module that calls them, so the
loop runs at this module's top level; the plugin registers the module with pytest, which makes the
fixtures visible to every feature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest_bdd
from pytest_bdd import parsers

from harness.steps_registry import CUSTOM_TYPES, StepDefinition, load_step_library, run_step


def wrap_step(definition: StepDefinition) -> Callable[..., Any]:
    """Wrap a library step so that pytest-bdd passes the ``world`` fixture first and the parsed values."""
    func = definition.func

    def step_impl(world: Any, **values: Any) -> Any:
        __tracebackhide__ = True
        return run_step(definition, world, values)

    params = [inspect.Parameter("world", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in definition.params]
    step_impl.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    step_impl.__name__ = step_impl.__qualname__ = func.__name__
    step_impl.__module__ = func.__module__
    step_impl.__doc__ = func.__doc__
    step_impl.servingbdd_definition = definition  # type: ignore[attr-defined]
    return step_impl


for _definition in load_step_library():
    _decorator = getattr(pytest_bdd, _definition.keyword)
    _parser = parsers.parse(_definition.pattern, extra_types=CUSTOM_TYPES, case_sensitive=True)
    _decorator(_parser)(wrap_step(_definition))
