"""Put the parts together: the runner model reads the suite, the classifier judges each definition, the
runner's resolution decides what every feature step runs; the trace folds in; counts per file.

Each definition gets exactly one verdict, so the counts add up to ``definitions``; the order of
precedence is stub > hollow > unused > implemented (an unused stub counts as a stub: it still has to be
written). ``percent_implemented`` = implemented / definitions *found*; a suite with no definitions is
an error (:class:`EmptySuite`), never "100 % implemented". Undefined and ambiguous steps are counted
once per feature line and step text (a Background step is one problem, not one per scenario; each
Outline row with a different text is its own); behave's ambiguous *definitions* (``AmbiguousStep`` at
load) count one each. Errors count files: a file with three problems is one unreadable file.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import classify, hollow
from . import config as config_mod
from . import rules as rules_mod
from . import trace as trace_mod
from .model import HOLLOW, IMPLEMENTED, STUB, UNUSED, FeatureStep, SourceError, StepFunction
from .runners import NoSuite, Suite, load_suite
from .runners.base import display

COUNTS = ("definitions", "implemented", "stubs", "hollow", "unused", "undefined", "ambiguous", "errors")
_FIELD = {STUB: "stubs", HOLLOW: "hollow", UNUSED: "unused", IMPLEMENTED: "implemented"}


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Hundreds of thousands of AST nodes and records live at once: the cyclic collector would scan them
    again and again (half the run time on a large suite). Nothing here makes reference cycles to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class EmptySuite(LookupError):
    """The runner model found no step definitions: no percentage can be honest (exit 2)."""


@dataclass
class Problem:
    step: FeatureStep
    matches: list[StepFunction] = field(default_factory=list)
    conflict: str = ""  # behave: the definition that an earlier one already matches


@dataclass
class Report:
    suite: Suite
    undefined: list[Problem]
    ambiguous: list[Problem]
    errors: list[SourceError]
    trace_unmatched: list[str] = field(default_factory=list)

    @property
    def functions(self) -> list[StepFunction]:
        return self.suite.functions

    def error_files(self) -> dict[str, list[SourceError]]:
        """One problem per file: its first, with how many more the file has (a broken file is one)."""
        files: dict[str, list[SourceError]] = {}
        for error in self.errors:
            bucket = files.setdefault(error.path, [])
            if all((e.line, e.message) != (error.line, error.message) for e in bucket):
                bucket.append(error)
        merged: dict[str, list[SourceError]] = {}
        for path, problems in files.items():
            first = min(problems, key=lambda e: (e.line or 10**9, e.message))
            more = f" (+{len(problems) - 1} more in this file)" if len(problems) > 1 else ""
            merged[path] = [SourceError(path, first.line, first.message + more)]
        return merged

    def file_rows(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}

        def row(path: str, kind: str) -> dict[str, Any]:
            if path not in rows:
                rows[path] = {"path": path, "kind": kind, **dict.fromkeys(COUNTS, 0)}
                rows[path].update(verdicts=[], undefined_steps=[], ambiguous_steps=[], error_list=[])
            return rows[path]

        for path in self.suite.step_paths:
            row(path, "steps")
        for path in self.suite.feature_paths:
            row(path, "feature")
        for func in self.functions:
            r = row(func.path, "steps")
            r["definitions"] += 1
            r[_FIELD[func.verdict]] += 1
            r["verdicts"].append(_verdict(func))
        snippet = self.suite.snippet
        snippets: dict[tuple[str, str], str] = {}  # an Outline's rows and copied steps share one
        for problem in self.undefined:
            r = row(problem.step.path, "feature")
            r["undefined"] += 1
            key = (problem.step.kind, problem.step.text)
            if key not in snippets:
                snippets[key] = snippet(problem.step) if snippet else ""
            r["undefined_steps"].append({**_step(problem.step), "snippet": snippets[key]})
        for problem in self.ambiguous:
            path = problem.step.path
            r = row(path, "feature" if path.endswith(".feature") else "steps")
            r["ambiguous"] += 1
            matches = [f"{f.where} {f.name}" for f in problem.matches]
            r["ambiguous_steps"].append(
                {**_step(problem.step), "matches": matches, "definition": problem.conflict}
            )
        for path, problems in self.error_files().items():
            r = row(path, "feature" if path.endswith(".feature") else "steps")
            r["errors"] = 1
            r["error_list"] = [e.as_dict() for e in problems]
        for r in rows.values():
            r["percent_implemented"] = (
                _percent(r["implemented"], r["definitions"])
                if r["kind"] == "steps" and r["definitions"]
                else None
            )
        return sorted(rows.values(), key=_badness)

    def totals(self) -> dict[str, Any]:
        by = {
            v: sum(1 for f in self.functions if f.verdict == v) for v in (STUB, HOLLOW, UNUSED, IMPLEMENTED)
        }
        return {
            "definitions": len(self.functions),
            "implemented": by[IMPLEMENTED],
            "stubs": by[STUB],
            "hollow": by[HOLLOW],
            "unused": by[UNUSED],
            "undefined": len(self.undefined),
            "ambiguous": len(self.ambiguous),
            "errors": len(self.error_files()),
            "percent_implemented": _percent(by[IMPLEMENTED], len(self.functions)),
            "feature_files": len(self.suite.feature_paths),
            "feature_steps": len(self.suite.steps),
            "step_files": len(self.suite.step_paths),
            "unbound_features": len(self.suite.unbound),
        }

    def runner_counts(self) -> dict[str, int]:
        """The runner's own unit of count (behave and pytest-bdd count registrations, not functions)."""
        used = {(id(e.func), e.pattern.order) for e in self._chosen}
        registrations = len(self.suite.index.entries)
        unused = sum(1 for e in self.suite.index.entries if (id(e.func), e.pattern.order) not in used)
        return {"registrations": registrations, "unused_registrations": unused}

    _chosen: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        with quiet_gc():
            return self._as_dict()

    def _as_dict(self) -> dict[str, Any]:
        return {
            "runner": self.suite.runner,
            "root": str(self.suite.root),
            "totals": self.totals(),
            "runner_counts": self.runner_counts(),
            "files": self.file_rows(),
            "errors": [e.as_dict() for problems in self.error_files().values() for e in problems],
            "unbound_features": self.suite.unbound,
            "notes": self.suite.notes,
            "trace_unmatched": self.trace_unmatched,
        }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _badness(row: dict[str, Any]) -> tuple[int, float, str]:
    bad = sum(row[k] for k in ("stubs", "hollow", "undefined", "ambiguous", "errors"))
    pct = row["percent_implemented"]
    return (-bad, 100.0 if pct is None else pct, row["path"])


def _step(step: FeatureStep) -> dict[str, Any]:
    return {"line": step.line, "keyword": step.keyword.strip(), "text": step.text, "scenario": step.scenario}


def _verdict(func: StepFunction) -> dict[str, Any]:
    return {
        "function": func.name,
        "line": func.line,
        "first_line": func.first_line,
        "verdict": func.verdict,
        "reasons": func.reasons,
        "rules": sorted({e.rule for e in func.evidence}),
        "patterns": [
            {
                "keyword": p.keyword,
                "pattern": p.text,
                "family": p.family,
                "parser": p.parser,
                "line": p.line,
                "needs": list(p.needs),
            }
            for p in func.patterns
        ],
        "uses": len(func.uses),
        "used_at": func.uses[:5],
        "trace_runs": func.trace_runs,
        "trace_untouched": func.trace_untouched,
    }


def _sequences(runner: str, runs: list[tuple[FeatureStep, list[StepFunction]]]) -> list[list[StepFunction]]:
    """The definitions each scenario runs, in order (behave lists a Background's steps once: they are put
    back in front of every scenario of their file)."""
    out: list[list[StepFunction]] = []
    backgrounds: dict[str, list[StepFunction]] = {}
    current: list[StepFunction] = []
    key: tuple[str, str, str] | None = None
    last = 0
    for step, funcs in runs:
        if runner == "behave" and step.background:
            backgrounds.setdefault(step.path, []).extend(funcs)
            continue
        here = (step.path, step.scenario, step.binding)
        if here != key or step.line <= last:
            if current:
                out.append(current)
            current = list(backgrounds.get(step.path, [])) if runner == "behave" else []
            key = here
        current.extend(funcs)
        last = step.line
    if current:
        out.append(current)
    return out


def build_report(
    root: Path,
    runner: str | None = None,
    features: list[Path] | None = None,
    steps: list[Path] | None = None,
    trace_file: Path | None = None,
) -> Report:
    """Read the suite under ``root`` (its settings from its own pyproject.toml, options override)."""
    with quiet_gc():
        return _build(root.resolve(), runner, features, steps, trace_file)


def _build(
    root: Path,
    runner: str | None,
    features: list[Path] | None,
    steps: list[Path] | None,
    trace_file: Path | None,
) -> Report:
    settings = config_mod.load(root)
    if runner:
        settings.runner = runner
    if features:
        settings.features = features
    if steps:
        settings.steps = steps
    rules = rules_mod.load(settings.rules)
    suite = load_suite(settings, rules)
    if not suite.functions:
        where = ", ".join(suite.step_paths) or str(root)
        raise EmptySuite(
            f"{suite.runner}: no step definitions found ({len(suite.feature_paths)} feature files, step code "
            f"looked for under {where}); a percentage of nothing would say nothing"
        )
    if suite.facts is not None:
        suite.classification = classify.classify_all(suite.functions, suite.facts)
    undefined: dict[tuple[str, int, str], Problem] = {}
    ambiguous: dict[tuple[str, int, str], Problem] = {}
    chosen: list[Any] = []
    runs: list[tuple[FeatureStep, list[StepFunction]]] = []
    used_at: dict[int, dict[str, None]] = {}
    for step in suite.steps:
        result = suite.resolve(step)
        runs.append((step, [] if result.ambiguous else result.runs))
        key = (step.path, step.line, step.text)
        for func in result.runs:
            used_at.setdefault(id(func), {})[step.where] = None
        chosen.extend(result.chosen)
        if not result.runs:
            undefined.setdefault(key, Problem(step))
        elif result.ambiguous:
            ambiguous.setdefault(key, Problem(step, result.runs))
    for func in suite.functions:
        func.uses.extend(w for w in used_at.get(id(func), {}) if w not in func.uses)
    for func, describe, earlier in suite.definition_conflicts:
        step = FeatureStep(func.path, func.first_line, "", "", describe, "")
        ambiguous.setdefault(
            (func.path, func.first_line, describe), Problem(step, [*earlier, func], describe)
        )
    by_where = {f.where: f for f in suite.functions}
    for _ in range(3):  # steps run through execute_steps are used where their caller is (nested too)
        for func in suite.functions:
            for where in classify.delegated(func) if func.uses else []:
                target = by_where.get(where)
                if target is not None and f"via {func.where}" not in target.uses:
                    target.uses.append(f"via {func.where}")
    if suite.classification is not None:
        hollow.refine_by_scenario(suite.functions, suite.classification, _sequences(suite.runner, runs))
    for func in suite.functions:
        if func.verdict == IMPLEMENTED and not func.uses:
            func.verdict = UNUSED
            func.reasons.insert(0, "no feature step runs it")
    errors = list(suite.errors)
    unmatched: list[str] = []
    if trace_file is not None:
        records, bad = trace_mod.read_trace(trace_file, display(trace_file, root))
        errors.extend(bad)
        unmatched = trace_mod.apply_trace(records, suite.functions, root)
    report = Report(suite, list(undefined.values()), list(ambiguous.values()), errors, unmatched)
    report._chosen = chosen
    return report


__all__ = ["EmptySuite", "NoSuite", "Report", "build_report"]
