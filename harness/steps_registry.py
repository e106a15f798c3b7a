"""The one step registry shared by pytest-bdd and behave.

Step functions are written once with ``@given/@when/@then`` from this module. Each takes the
scenario's :class:`harness.world.World` as its first argument and the values parsed from the
step text (``parse`` patterns, e.g. ``{count:d}``) as keyword arguments. The runner adapters
(:mod:`harness.pytest_plugin`, :mod:`harness.behave_env`) register every entry with their runner,
and ``tools/stub_report.py`` and ``tools/step_docs.py`` read the same registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import parse

#: Extra ``parse`` types usable in patterns, e.g. ``{names:NameList}``.
CUSTOM_TYPES: dict[str, Callable[[str], Any]] = {}


def parse_type(name: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    """Register a custom ``parse`` type (shared by both runners)."""

    def decorator(func: Callable[[str], Any]) -> Callable[[str], Any]:
        CUSTOM_TYPES[name] = func
        return func

    return decorator


@dataclass(frozen=True)
class StepDefinition:
    keyword: str  # "given" | "when" | "then" | "step"
    pattern: str
    func: Callable[..., Any]
    example: str | None = None
    parser: parse.Parser = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    @property
    def location(self) -> str:
        code = self.func.__code__
        return f"{code.co_filename}:{code.co_firstlineno}"

    @property
    def params(self) -> list[str]:
        return list(inspect.signature(self.func).parameters)[1:]

    def match(self, text: str) -> dict[str, Any] | None:
        result = self.parser.parse(text)
        return None if result is None else dict(result.named)


REGISTRY: list[StepDefinition] = []


def _register(
    keyword: str, pattern: str, example: str | None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        parser = parse.compile(pattern, extra_types=CUSTOM_TYPES, case_sensitive=True)
        REGISTRY.append(StepDefinition(keyword, pattern, func, example, parser))
        return func

    return decorator


def given(pattern: str, *, example: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Given step. ``example`` is shown in the step vocabulary doc (defaults to the pattern)."""
    return _register("given", pattern, example)


def when(pattern: str, *, example: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a When step."""
    return _register("when", pattern, example)


def then(pattern: str, *, example: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Then step."""
    return _register("then", pattern, example)


def load_step_library() -> list[StepDefinition]:
    """Import the ``steps`` package (which registers everything) and return the registry."""
    import steps  # noqa: F401  (import registers the step definitions)

    return REGISTRY
