"""Plain records shared by the report's modules."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

STUB, HOLLOW, UNUSED, IMPLEMENTED = "stub", "hollow", "unused", "implemented"


@dataclass(frozen=True)
class SourceError:
    """A file the report could not read (broken Gherkin or Python, bad trace line, bad pattern)."""

    path: str
    line: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message}


@dataclass(frozen=True)
class FeatureStep:
    """One concrete step of one scenario (Background included, Outline rows substituted)."""

    path: str
    line: int
    keyword: str  # as written, e.g. "And "
    kind: str  # "given" | "when" | "then" | "any" (a leading ``*``)
    text: str
    scenario: str
    has_table: bool = False
    has_docstring: bool = False

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Pattern:
    """One registration of a step function: ``@given("...")`` and friends."""

    family: str  # "registry" | "pytest_bdd" | "behave"
    keyword: str  # "given" | "when" | "then" | "step"
    parser: str  # "parse" | "cfparse" | "re" | "string"
    text: str | None  # None: not resolvable statically
    line: int
    extra_types: dict[str, str | None] = field(default_factory=dict)  # pytest-bdd per-parser types


@dataclass(eq=False)
class StepFunction:
    """A step function and everything the report concludes about it."""

    path: str
    name: str
    line: int  # the ``def`` line
    first_line: int  # first decorator line: what ``co_firstlineno`` (and so the trace) says
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    module: Any  # definitions.ModuleInfo
    patterns: list[Pattern] = field(default_factory=list)
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)  # feature locations that match it
    trace_runs: int = 0
    trace_untouched: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def families(self) -> set[str]:
        return {p.family for p in self.patterns}
