"""``--explain STEP``: why a definition got its verdict, rule by rule, and what a step runs.

STEP is a function name, ``FILE:LINE`` (of the definition or of a feature step) or a step's text.
"""

from __future__ import annotations

from typing import Any

from .model import HOLLOW, IMPLEMENTED, StepFunction
from .report import Report


def _find(report: Report, query: str) -> tuple[list[StepFunction], list[Any]]:
    funcs = [f for f in report.functions if query in (f.name, f.where, f"{f.path}:{f.first_line}")]
    steps = [s for s in report.suite.steps if query in (s.text, s.where)]
    if not funcs and not steps:
        lowered = query.lower()
        steps = [s for s in report.suite.steps if lowered in s.text.lower()][:5]
    return funcs, steps


def _rule_text(report: Report, rule_id: str) -> str:
    facts = report.suite.facts
    rules = getattr(facts, "rules", None)
    if rules is None or rule_id not in rules.rules:
        return rule_id
    rule = rules.rules[rule_id]
    return f"{rule.id} ({rule.effect}: {rule.text})"


def _explain_function(report: Report, func: StepFunction) -> list[str]:
    out = [f"{func.where} {func.name}: {func.verdict}"]
    for p in func.patterns:
        out.append(f"  registers {p.keyword}({p.text!r}) [{p.family} {p.parser}] at line {p.line}")
    for reason in func.reasons:
        out.append(f"  - {reason}")
    if func.evidence:
        out.append("  rules:")
        for e in func.evidence:
            where = f" (line {e.line})" if e.line else ""
            out.append(f"    {_rule_text(report, e.rule)}: {e.detail}{where}")
    resolution = report.suite.classification
    if func.verdict in (HOLLOW, IMPLEMENTED) and resolution is not None:
        slots = {e.detail.split("reads ", 1)[1] for e in func.evidence if e.detail.startswith("reads ")}
        for slot, writers in sorted(resolution.writers.items()):
            label = slot.split(".", 1)[-1] if slot.startswith("w.") else slot
            if any(label in s for s in slots) and writers:
                state = "holds something real" if slot in resolution.real else "only ever holds test values"
                out.append(
                    f"  state {slot} {state}; written at "
                    + ", ".join(list(dict.fromkeys(w for w, _ in writers))[:4])
                )
    out.append(
        f"  runs for {len(func.uses)} feature step(s)" + (f", e.g. {func.uses[0]}" if func.uses else "")
    )
    return out


def explain(report: Report, queries: list[str]) -> str:
    out: list[str] = []
    for query in queries:
        funcs, steps = _find(report, query)
        if not funcs and not steps:
            out.append(f"{query}: no definition or feature step by that name, location or text")
        for func in funcs:
            out.extend(_explain_function(report, func))
        for step in steps[:5]:
            result = report.suite.resolve(step)
            out.append(f"{step.where} {step.keyword.strip()} {step.text}")
            if not result.runs:
                out.append("  undefined" + (f" ({result.note})" if result.note else ""))
            elif result.ambiguous:
                out.append("  ambiguous: " + ", ".join(f"{f.where} {f.name}" for f in result.runs))
            for func in result.runs if not result.ambiguous else []:
                out.append(f"  runs {func.where} {func.name}" + (f" ({result.note})" if result.note else ""))
                out.extend("  " + line for line in _explain_function(report, func))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
