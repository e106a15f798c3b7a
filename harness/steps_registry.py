"""The one step registry shared by pytest-bdd and behave.

Step functions are written once with ``@given/@when/@then`` from this module. Each takes the scenario's
:class:`harness.world.World` as its first argument and the values parsed from the step text (``parse``
patterns, e.g. ``{count:d}``) as keyword arguments, and names the target capabilities it needs
(``needs=("admin",)``, see :data:`harness.targets.base.CAPABILITIES`): a scenario with a step its target
cannot serve is skipped, naming the capability. The runner adapters (:mod:`harness.pytest_plugin`,
:mod:`harness.behave_env`) register every entry with their runner; ``tools/stub_report.py`` and
``tools/step_docs.py`` read the same registry.

Step modules: the ``steps`` package of this project, plus the packages a project names in
``[tool.servingbdd] steps = ["mysteps"]`` (its pyproject.toml), in ``SERVINGBDD_STEPS`` (comma-separated)
or under the ``servingbdd.steps`` entry-point group. Registering the same pattern twice for the same
keyword is an error at import time (like behave's ``AmbiguousStep``).

*Setup* steps (``setup=True``) describe the services a scenario needs (a cluster, its options) without
starting them, so that several of them stack in any order (``Given a cluster ...`` and ``And the
cluster's links accept network faults``). The runners call :func:`run_step` for every step: before the
first step that is not a setup step (and at the end of a scenario made only of setup steps, through
:func:`settle`), the :data:`BEFORE_ACTION` hooks that step packages register start what was described.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import parse

#: Extra ``parse`` types usable in patterns, e.g. ``{names:NameList}``.
CUSTOM_TYPES: dict[str, Callable[[str], Any]] = {}
STEPS_ENTRY_POINT_GROUP = "servingbdd.steps"
DEFAULT_PACKAGES = ("steps",)
_project_root: Path | None = None  # whose pyproject.toml names the step packages (default: the cwd)


def use_project(rootdir: Path) -> None:
    """Read ``[tool.servingbdd] steps`` from ``rootdir``'s pyproject.toml (the runner's root directory)."""
    global _project_root
    _project_root = Path(rootdir)


def parse_type(name: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    """Register a custom ``parse`` type (shared by both runners)."""

    def decorator(func: Callable[[str], Any]) -> Callable[[str], Any]:
        CUSTOM_TYPES[name] = func
        return func

    return decorator


class AmbiguousStep(ValueError):
    """The same step pattern was registered twice for the same keyword."""


#: What a setup step provides: option names, or a function of the step's parsed values and its data table
#: (None without one) returning them; it raises AssertionError for a table it cannot accept.
Provides = tuple[str, ...] | Callable[[dict[str, Any], list[list[str]] | None], Iterable[str]]
#: For each setup option a step may require, what to tell a QA engineer whose scenario lacks it (which
#: step to add); step packages fill it, the checks before a run read it.
SETUP_ADVICE: dict[str, str] = {}


@dataclass(frozen=True, eq=False)
class StepDefinition:
    keyword: str  # "given" | "when" | "then"
    pattern: str
    func: Callable[..., Any]
    example: str | None = None
    needs: tuple[str, ...] = ()  # target capabilities the step uses
    also: tuple[str, ...] = field(default=())  # other keywords the same pattern is registered under
    setup: bool = False  # describes what to start; the services start before the next other step
    requires: tuple[str, ...] = ()  # setup options the step needs (checked before anything starts)
    provides: Provides = ()  # setup options a setup step gives (or a function of its values and table)

    @cached_property
    def parser(self) -> parse.Parser:
        """Compiled on first use (a suite of hundreds of steps imports fast)."""
        return parse.compile(self.pattern, extra_types=CUSTOM_TYPES, case_sensitive=True)

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


class StepRegistry:
    """Step definitions in registration order."""

    def __init__(self) -> None:
        self.definitions: list[StepDefinition] = []
        self._loaded: set[str] = set()

    def add(
        self,
        keyword: str,
        pattern: str,
        func: Callable[..., Any],
        *,
        example: str | None,
        needs: Iterable[str],
        setup: bool = False,
        requires: Iterable[str] = (),
        provides: Provides = (),
    ) -> StepDefinition:
        for existing in self.definitions:
            if existing.keyword == keyword and existing.pattern == pattern and existing.func is not func:
                raise AmbiguousStep(
                    f"the {keyword} step {pattern!r} is defined twice: {existing.location} and "
                    f"{func.__code__.co_filename}:{func.__code__.co_firstlineno}"
                )
        definition = StepDefinition(
            keyword,
            pattern,
            func,
            example,
            tuple(needs),
            setup=setup,
            requires=tuple(requires),
            provides=provides if callable(provides) else tuple(provides),
        )
        self.definitions.append(definition)
        return definition

    def decorator(
        self, keyword: str, pattern: str, example: str | None, needs: Iterable[str], **extra: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add(keyword, pattern, func, example=example, needs=needs, **extra)
            return func

        return register

    def matching(self, keyword: str, text: str) -> list[tuple[StepDefinition, dict[str, Any]]]:
        """Every definition of ``keyword`` that matches ``text``, with the values it parses."""
        found = []
        for definition in self.definitions:
            if definition.keyword == keyword:
                values = definition.match(text)
                if values is not None:
                    found.append((definition, values))
        return found

    def load(self, packages: Iterable[str] | None = None) -> list[StepDefinition]:
        """Import the step packages (default: :func:`configured_packages`); each registers its steps."""
        for name in packages if packages is not None else configured_packages():
            if name not in self._loaded:
                importlib.import_module(name)
                self._loaded.add(name)
        return self.definitions


REGISTRY = StepRegistry()


def given(
    pattern: str,
    *,
    example: str | None = None,
    needs: Iterable[str] = (),
    setup: bool = False,
    requires: Iterable[str] = (),
    provides: Provides = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Given step. ``example`` is shown in the step vocabulary doc (defaults to the pattern);
    ``needs`` names the target capabilities it uses; ``setup`` marks a step that only describes what to
    start (see the module docstring), ``provides`` the setup options it gives and ``requires`` the ones
    it needs (a scenario that requires one no step provides is an error before anything starts)."""
    return REGISTRY.decorator(
        "given", pattern, example, needs, setup=setup, requires=requires, provides=provides
    )


def when(
    pattern: str, *, example: str | None = None, needs: Iterable[str] = (), requires: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a When step."""
    return REGISTRY.decorator("when", pattern, example, needs, requires=requires)


def then(
    pattern: str, *, example: str | None = None, needs: Iterable[str] = (), requires: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Then step."""
    return REGISTRY.decorator("then", pattern, example, needs, requires=requires)


#: Called with the World before every step that is not a setup step, and by :func:`settle`: each brings
#: the services to what the scenario's setup steps described (and does nothing once they are).
BEFORE_ACTION: list[Callable[[Any], None]] = []


def before_action(func: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register a :data:`BEFORE_ACTION` hook (a step package does it at import)."""
    if func not in BEFORE_ACTION:
        BEFORE_ACTION.append(func)
    return func


def settle(world: Any) -> None:
    """Start what the setup steps so far described (no-op when nothing is pending)."""
    for hook in BEFORE_ACTION:
        hook(world)


def run_step(definition: StepDefinition, world: Any, values: dict[str, Any]) -> Any:
    """How both runners call a library step: a step that acts first settles the setup before it."""
    __tracebackhide__ = True
    if not definition.setup:
        settle(world)
    return definition.func(world, **values)


def configured_packages(rootdir: Path | None = None) -> list[str]:
    """``steps`` (when importable) plus the projects' own step packages, in order."""
    names: list[str] = []
    if importlib.util.find_spec("steps") is not None:
        names.extend(DEFAULT_PACKAGES)
    pyproject = (rootdir or _project_root or Path.cwd()) / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            data = {}
        configured = data.get("tool", {}).get("servingbdd", {}).get("steps", [])
        names.extend(str(n) for n in configured if isinstance(n, str))
    names.extend(n.strip() for n in os.environ.get("SERVINGBDD_STEPS", "").split(",") if n.strip())
    names.extend(ep.value for ep in entry_points(group=STEPS_ENTRY_POINT_GROUP))
    return list(dict.fromkeys(names))


def load_step_library(packages: Iterable[str] | None = None) -> list[StepDefinition]:
    """Import the configured step packages (which registers everything) and return the registry."""
    return REGISTRY.load(packages)
