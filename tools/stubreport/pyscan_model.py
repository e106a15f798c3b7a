"""What the scan of a suite's Python modules is told and what it finds: the runner model's
registration rules (:class:`ScanRules`) and the :class:`Discovery` (step functions, types, bindings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import SourceError, StepFunction
from .pysource import ModuleInfo


@dataclass
class Binding:
    """pytest-bdd: ``scenarios(paths...)`` or ``@scenario(path, name)`` in a module."""

    module: str  # display path
    paths: list[str]
    scenario: str | None = None
    base_dir: str | None = None
    line: int = 0


@dataclass
class ScanRules:
    """What registers a step, for one runner model."""

    family: str
    registrations: dict[str, str]  # qualified name -> keyword ("given"...; "step" = any)
    default_parser: str  # parser of a plain-string pattern
    registry_modules: tuple[str, ...] = ()  # ``<module>.<obj>.given`` registers too (StepRegistry)
    injected: dict[str, str] = field(default_factory=dict)  # unbound name -> qualified name (behave)
    star_exports: dict[str, list[str]] = field(default_factory=dict)
    parsers: dict[str, str] = field(default_factory=dict)  # qualified name -> parser kind (pytest-bdd)
    use_matcher: frozenset[str] = frozenset()
    register_type: frozenset[str] = frozenset()
    define_parameter_type: frozenset[str] = frozenset()
    cucumber_matcher: frozenset[str] = frozenset()  # behave's use_step_matcher_for_cucumber_expressions
    type_decorators: frozenset[str] = frozenset()  # registry: @parse_type("Name")
    custom_types_dicts: frozenset[str] = frozenset()  # registry: CUSTOM_TYPES["Name"] = conv
    bindings: dict[str, str] = field(default_factory=dict)  # pytest-bdd scenario/scenarios
    fixture_decorators: frozenset[str] = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})


@dataclass
class Discovery:
    functions: list[StepFunction] = field(default_factory=list)
    modules: list[ModuleInfo] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    types: dict[str, str | None] = field(default_factory=dict)  # custom parse types: name -> regex
    cucumber_types: dict[str, str] = field(default_factory=dict)  # cucumber parameter types
    bindings: list[Binding] = field(default_factory=list)
    by_node: dict[int, StepFunction] = field(default_factory=dict)
