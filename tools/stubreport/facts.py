"""What the stub / hollow analysis records, for Python and Rust alike: the taint atoms, a function's
facts and summary, and what the runner model knows about the suite (:class:`SuiteFacts`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

from .harness_facts import HarnessFacts
from .model import StepFunction
from .pysource import ModuleInfo
from .rules import Rules

R, M, P = "R", "M", "P"
Taint = frozenset[str]
EMPTY: Taint = frozenset()
REAL: Taint = frozenset({R})
WORLD: Taint = frozenset({"W"})  # the World/context object itself (passed to a helper)


def real_atoms(taint: Taint) -> Taint:
    return frozenset(a for a in taint if a == R or a.startswith("s:"))


# -- the suite's facts ---------------------------------------------------------------------------------
@dataclass
class Fact:
    """Something a function does: ``real`` facts count when ``cond`` resolves real after the fixpoint."""

    rule: str
    detail: str
    line: int
    cond: Taint = EMPTY


@dataclass
class Summary:
    evidence: list[Fact] = field(default_factory=list)  # real when their condition is
    notes: list[Fact] = field(default_factory=list)  # what it does instead (hollow reasons)
    writes: dict[str, list[Taint]] = field(default_factory=dict)
    reads: list[tuple[str, int]] = field(default_factory=list)
    returns: Taint = EMPTY
    asserts: int = 0
    returned_class: tuple[ast.ClassDef, ModuleInfo] | None = None  # ``return Host()``: an instance

    def write(self, slot: str, value: Taint) -> None:
        self.writes.setdefault(slot, []).append(value)

    def merge(self, other: Summary, prefix: str) -> None:
        for fact in other.evidence:
            self.evidence.append(Fact(fact.rule, f"{prefix} which {fact.detail}", fact.line, fact.cond))
        self.notes.extend(other.notes)
        for slot, values in other.writes.items():
            self.writes.setdefault(slot, []).extend(values)
        self.reads.extend(other.reads)


@dataclass
class SuiteFacts:
    """What the runner model knows about the suite, for the analysis."""

    rules: Rules
    runner: str  # registry | behave | pytest_bdd
    modules: dict[str, ModuleInfo]  # scanned test code, by dotted name
    harness: HarnessFacts | None = None
    harness_package: str | None = None
    suite_module: Callable[[str], bool] = lambda name: False  # a module of the suite's own code
    fixtures: dict[str, list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ModuleInfo]]] = field(
        default_factory=dict
    )
    target_fixtures: dict[str, list[StepFunction]] = field(default_factory=dict)
    hooks: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ModuleInfo]] = field(default_factory=list)
    #: fixtures whose value is an instance of a test-code class (a Host, a Page): methods are followed
    fixture_classes: dict[str, tuple[ast.ClassDef, ModuleInfo]] = field(default_factory=dict)
    #: behave's context.execute_steps("...") → the definitions those step lines run
    run_steps: Callable[[str], list[StepFunction]] | None = None
    _globals: dict[str, set[str]] = field(default_factory=dict)
    _global_taint: dict[str, Taint] = field(default_factory=dict)

    def module_globals(self, module: ModuleInfo) -> set[str]:
        if module.module_name not in self._globals:
            names: set[str] = set()
            for stmt in module.tree.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            self._globals[module.module_name] = names
        return self._globals[module.module_name]


#: how telling a kind of evidence is, for the order of the reasons (direct touches first)
_STRENGTH = {"real.io": 0, "real.product": 0, "real.harness": 0, "real.library": 1, "real.fixture": 2,
             "real.steps": 3, "real.state": 4, "real.data": 5}  # fmt: skip


def _only_delegates(fact: Fact) -> bool:
    return bool(fact.cond) and all(a.startswith("s:def:") for a in fact.cond)
