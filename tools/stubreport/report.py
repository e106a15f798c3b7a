"""Put the parts together: read, discover, classify, match, fold in the trace, count per file.

Each definition gets exactly one verdict, so the counts add up to ``definitions``; the order of
precedence is stub > hollow > unused > implemented (an unused stub counts as a stub: it still has to be
written). ``percent_implemented`` = implemented / definitions (100 when there are none). Undefined and
ambiguous steps are counted once per feature line and step text (a Background step is one problem, not
one per scenario; each Outline row with a different text is its own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import classify, definitions, features, matching
from . import trace as trace_mod
from .cache import FeatureCache
from .harness_facts import read_harness
from .model import HOLLOW, IMPLEMENTED, STUB, UNUSED, FeatureStep, SourceError, StepFunction
from .snippets import snippet

COUNTS = ("definitions", "implemented", "stubs", "hollow", "unused", "undefined", "ambiguous", "errors")


@dataclass
class Problem:
    step: FeatureStep
    matches: list[StepFunction] = field(default_factory=list)


@dataclass
class Report:
    functions: list[StepFunction]
    undefined: list[Problem]
    ambiguous: list[Problem]
    errors: list[SourceError]
    feature_paths: list[str]
    step_paths: list[str]
    feature_steps: int
    trace_unmatched: list[str] = field(default_factory=list)

    def file_rows(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}

        def row(path: str, kind: str) -> dict[str, Any]:
            if path not in rows:
                rows[path] = {"path": path, "kind": kind, **dict.fromkeys(COUNTS, 0)}
                rows[path].update(verdicts=[], undefined_steps=[], ambiguous_steps=[], error_list=[])
            return rows[path]

        for path in self.step_paths:
            row(path, "steps")
        for path in self.feature_paths:
            row(path, "feature")
        for func in self.functions:
            r = row(func.path, "steps")
            r["definitions"] += 1
            r[
                {STUB: "stubs", HOLLOW: "hollow", UNUSED: "unused", IMPLEMENTED: "implemented"}[func.verdict]
            ] += 1
            r["verdicts"].append(_verdict(func))
        for problem in self.undefined:
            r = row(problem.step.path, "feature")
            r["undefined"] += 1
            r["undefined_steps"].append({**_step(problem.step), "snippet": snippet(problem.step)})
        for problem in self.ambiguous:
            r = row(problem.step.path, "feature")
            r["ambiguous"] += 1
            matches = [f"{f.where} {f.name}" for f in problem.matches]
            r["ambiguous_steps"].append({**_step(problem.step), "matches": matches})
        for error in self.errors:
            r = row(error.path, "feature" if error.path.endswith(".feature") else "steps")
            r["errors"] += 1
            r["error_list"].append(error.as_dict())
        for r in rows.values():
            r["percent_implemented"] = (
                _percent(r["implemented"], r["definitions"]) if r["kind"] == "steps" else None
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
            "errors": len(self.errors),
            "percent_implemented": _percent(by[IMPLEMENTED], len(self.functions)),
            "feature_files": len(self.feature_paths),
            "feature_steps": self.feature_steps,
            "step_files": len(self.step_paths),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals(),
            "files": self.file_rows(),
            "errors": [e.as_dict() for e in self.errors],
            "trace_unmatched": self.trace_unmatched,
        }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 100.0


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
        "patterns": [
            {"keyword": p.keyword, "pattern": p.text, "family": p.family, "parser": p.parser, "line": p.line}
            for p in func.patterns
        ],
        "uses": len(func.uses),
        "used_at": func.uses[:5],
        "trace_runs": func.trace_runs,
        "trace_untouched": func.trace_untouched,
    }


def _display(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:
        return path.as_posix()


def build_report(
    features_dir: Path,
    steps_dirs: list[Path],
    trace_file: Path | None = None,
    base: Path | None = None,
    cache_dir: Path | None = None,
) -> Report:
    """``cache_dir``: where parsed feature files are cached (None: no cache)."""
    base = base or Path.cwd()
    feature_paths = features.feature_files(features_dir) if features_dir.exists() else []
    py_paths = definitions.python_files(d for d in steps_dirs if d.exists())
    display = {p: _display(p, base) for p in [*feature_paths, *py_paths]}
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    steps, errors = features.read_features(feature_paths, display, cache)
    found = definitions.discover(py_paths, display, base)
    errors.extend(found.errors)

    lib = classify.Library(read_harness(base / "harness"), {m.module_name: m for m in found.modules})
    classify.classify_all(found.functions, lib)

    index = matching.StepIndex.build(
        found.functions, matching.MatcherFactory(found.registry_types, found.behave_types)
    )
    errors.extend(index.errors)
    index.cache = cache
    undefined: dict[tuple[str, int, str], Problem] = {}
    ambiguous: dict[tuple[str, int, str], Problem] = {}
    for step in steps:
        result = index.match(step)
        key = (step.path, step.line, step.text)
        for func in result.functions:
            if step.where not in func.uses:
                func.uses.append(step.where)
        if not result.entries:
            undefined.setdefault(key, Problem(step))
        elif result.ambiguous:
            ambiguous.setdefault(key, Problem(step, result.functions))
    if cache is not None:
        cache.save()
    for func in found.functions:
        if func.verdict == IMPLEMENTED and not func.uses:
            func.verdict = UNUSED
            func.reasons.insert(0, "no feature step matches it")

    unmatched: list[str] = []
    if trace_file is not None:
        records, bad = trace_mod.read_trace(trace_file, _display(trace_file, base))
        errors.extend(bad)
        paths = {display[p]: p for p in py_paths}
        unmatched = trace_mod.apply_trace(records, found.functions, paths, base)

    return Report(
        functions=found.functions,
        undefined=list(undefined.values()),
        ambiguous=list(ambiguous.values()),
        errors=errors,
        feature_paths=[display[p] for p in feature_paths],
        step_paths=sorted({f.path for f in found.functions}),
        feature_steps=len(steps),
        trace_unmatched=unmatched,
    )
