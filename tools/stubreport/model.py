"""Plain records shared by the report's modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

STUB, HOLLOW, UNUSED, IMPLEMENTED = "stub", "hollow", "unused", "implemented"
RUNNERS = ("registry", "behave", "pytest-bdd", "rust-cucumber")


@dataclass(frozen=True)
class SourceError:
    """A file the report could not read (broken Gherkin or source, bad trace line, bad pattern)."""

    path: str
    line: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message}


class FeatureStep(NamedTuple):
    """One concrete step of one scenario (Background included, Outline rows substituted).

    A named tuple: a large suite has tens of thousands of them, and a frozen dataclass costs several
    times more to create."""

    path: str
    line: int
    keyword: str  # as written, e.g. "And "
    kind: str  # "given" | "when" | "then" | "any" (a step every keyword's definitions may match)
    text: str
    scenario: str
    has_table: bool = False
    has_docstring: bool = False
    background: bool = False
    binding: str = ""  # pytest-bdd: the test module that binds the scenario (its fixtures resolve it)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Pattern:
    """One registration of a step function: ``@given("...")`` and friends."""

    family: str  # the runner: "registry" | "behave" | "pytest_bdd" | "rust"
    keyword: str  # "given" | "when" | "then" | "step" (any keyword)
    parser: str  # "parse" | "cfparse" | "re" | "re0" | "string" | "cucumber" | "literal"
    text: str | None  # None: not resolvable statically
    line: int
    extra_types: dict[str, str | None] = field(default_factory=dict)  # custom types: name -> regex
    order: int = 0  # registration order (behave: the first registered match wins)
    namespace: str = ""  # pytest-bdd: the module whose namespace holds the step fixture
    path: str = ""  # the file of the registration (a step library may register another file's function)
    needs: tuple[str, ...] = ()  # our registry: the target capabilities the step declares (needs=...)


@dataclass(frozen=True)
class Evidence:
    """One fact behind a verdict, for the reasons and ``--explain``."""

    rule: str  # rule id from rules.toml, e.g. "real.fixture", "inert.mock"
    detail: str
    line: int = 0


@dataclass(eq=False)
class StepFunction:
    """A step function and everything the report concludes about it."""

    path: str
    name: str
    line: int  # the ``def``/``fn`` line
    first_line: int  # first decorator/attribute line: what ``co_firstlineno`` (and so the trace) says
    node: Any  # ast node (Python) or tree-sitter node (Rust)
    module: Any  # pyscan.ModuleInfo or rust module record
    language: str = "python"
    patterns: list[Pattern] = field(default_factory=list)
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)  # feature locations that run it
    summary: Any = None  # classify.Summary: what the body does (for the per-scenario check)
    trace_runs: int = 0
    trace_untouched: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def families(self) -> set[str]:
        return {p.family for p in self.patterns}
