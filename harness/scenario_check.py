"""Checks done on the feature files before anything starts, the same for both runners.

* :func:`lint_feature`: malformed files are hard errors with ``file:line`` — a Scenario Outline without
  Examples, a ``<placeholder>`` no Examples column fills, a step line before the first Scenario (which
  both runners would otherwise take as description text), a file the Gherkin parser refuses.
* :func:`resolve_steps`: every step of a scenario is matched against the step library: undefined and
  ambiguous steps are reported all at once, and the capabilities the scenario's steps need are collected,
  so that a scenario its target cannot serve is skipped with the reason before a service starts; a step
  that requires a setup option (links that accept network faults, a trainer ...) that no setup step of
  the scenario provides, or a setup table a step cannot accept, is reported the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.steps_registry import StepDefinition

_STEP_WORDS = ("given ", "when ", "then ", "and ", "but ", "* ")
_PLACEHOLDER = re.compile(r"<([^<>\s][^<>]*)>")


@dataclass(frozen=True)
class ScenarioStep:
    keyword: str  # "given" | "when" | "then" (And/But resolved)
    text: str
    location: str  # "features/x.feature:12"
    table: tuple[tuple[str, ...], ...] | None = None  # its data table, rows of cells


@dataclass
class Resolution:
    """What the step library makes of one scenario's steps."""

    definitions: list[tuple[ScenarioStep, StepDefinition | None]] = field(default_factory=list)
    undefined: list[ScenarioStep] = field(default_factory=list)
    ambiguous: list[tuple[ScenarioStep, list[StepDefinition]]] = field(default_factory=list)
    needs: dict[str, ScenarioStep] = field(default_factory=dict)  # capability -> first step needing it
    unmet: list[tuple[ScenarioStep, str]] = field(default_factory=list)  # (step, setup option no step gives)
    invalid: list[tuple[ScenarioStep, str]] = field(default_factory=list)  # (setup step, what is wrong)

    def setup_problems(self) -> list[str]:
        """The unmet setup requirements and the refused setup tables, each ``file:line: what``."""
        from harness.steps_registry import SETUP_ADVICE

        out = [f"{step.location}: {_said(step)}: {why}" for step, why in self.invalid]
        for step, option in self.unmet:
            advice = SETUP_ADVICE.get(option, f"add a step that provides {option!r}")
            out.append(f"{step.location}: {_said(step)}: needs {advice}")
        return out

    def missing(self, capabilities: frozenset[str] | set[str]) -> list[tuple[str, ScenarioStep]]:
        return [(c, step) for c, step in self.needs.items() if c not in capabilities]


def _said(step: ScenarioStep) -> str:
    return f"'{step.keyword.capitalize()} {step.text}'"


def resolve_steps(steps: list[ScenarioStep], registry: list[StepDefinition]) -> Resolution:
    resolution = Resolution()
    for step in steps:
        found = [d for d in registry if d.keyword == step.keyword and d.match(step.text) is not None]
        if not found:
            resolution.undefined.append(step)
            resolution.definitions.append((step, None))
            continue
        if len(found) > 1:
            resolution.ambiguous.append((step, found))
        definition = found[0]
        resolution.definitions.append((step, definition))
        for capability in definition.needs:
            resolution.needs.setdefault(capability, step)
    _check_setup(resolution)
    return resolution


def _check_setup(resolution: Resolution) -> None:
    """Which setup options the scenario's setup steps provide; which steps require one none provides."""
    provided: set[str] = set()
    for step, definition in resolution.definitions:
        if definition is None or not definition.provides:
            continue
        if callable(definition.provides):
            table = [list(row) for row in step.table] if step.table is not None else None
            try:
                provided.update(definition.provides(definition.match(step.text) or {}, table))
            except (AssertionError, ValueError) as exc:
                resolution.invalid.append((step, str(exc)))
        else:
            provided.update(definition.provides)
    for step, definition in resolution.definitions:
        for option in definition.requires if definition is not None else ():
            if option not in provided:
                resolution.unmet.append((step, option))


def skip_reason(target: str, missing: list[tuple[str, ScenarioStep]]) -> str:
    """``target 'mlserver' lacks 'workers' (first needed at features/x.feature:11), 'admin' (...)``."""
    parts = [f"{capability!r} (first needed at {step.location})" for capability, step in missing]
    return f"target {target!r} lacks " + ", ".join(parts)


def ambiguous_message(step: ScenarioStep, found: list[StepDefinition]) -> str:
    from harness.snippets import short_location

    where = ", ".join(f"{d.pattern!r} ({short_location(d.location)})" for d in found)
    return f"Ambiguous step at {step.location}: {step.keyword.capitalize()} {step.text}\n    matches {where}"


# -- malformed files ----------------------------------------------------------------------------------
def lint_feature(
    path: Path, display: str | None = None, registry: list[StepDefinition] | None = None
) -> list[str]:
    """Problems that make a feature file mean something other than it says, each ``file:line: what``.

    A description line counts as a misplaced step when it starts with a step keyword and the rest is a
    step of ``registry`` (default: the loaded step library): prose such as "when none is left, ..." is not.
    """
    if registry is None:
        from harness.steps_registry import load_step_library

        registry = load_step_library()
    from gherkin.errors import CompositeParserException, ParserError
    from gherkin.parser import Parser

    shown = display or str(path)
    text = Path(path).read_text(encoding="utf-8")
    try:
        document: dict[str, Any] = Parser().parse(text)
    except (CompositeParserException, ParserError) as exc:
        return [f"{shown}:{_error_line(exc)}: {_error_text(exc)}"]
    feature = document.get("feature")
    if not feature:
        return []
    problems: list[str] = []
    _check_description(feature, shown, problems, registry)
    for child in feature.get("children", []):
        for node in [child] + [c for c in child.get("rule", {}).get("children", [])]:
            scenario = node.get("scenario")
            if scenario is not None:
                _check_scenario(scenario, shown, problems)
            background = node.get("background")
            if background is not None:
                _check_description(background, shown, problems, registry)
    return problems


def _check_description(
    node: dict[str, Any], shown: str, problems: list[str], registry: list[StepDefinition]
) -> None:
    description = node.get("description") or ""
    first_line = node["location"]["line"] + 1
    for offset, line in enumerate(description.splitlines()):
        words = line.strip().split(" ", 1)
        if len(words) == 2 and f"{words[0].lower()} " in _STEP_WORDS and _is_step(words[1], registry):
            line_no = _find_line(shown, line.strip(), first_line + offset)
            problems.append(
                f"{shown}:{line_no}: a step line before the first Scenario: {line.strip()!r} would be "
                "taken as description text and never run; put it under a Scenario or a Background"
            )


def _check_scenario(scenario: dict[str, Any], shown: str, problems: list[str]) -> None:
    line = scenario["location"]["line"]
    keyword = scenario.get("keyword", "Scenario").strip()
    examples = scenario.get("examples") or []
    columns: set[str] = set()
    rows = 0
    for table in examples:
        columns.update(cell["value"] for cell in (table.get("tableHeader") or {}).get("cells", []))
        rows += len(table.get("tableBody") or [])
    outline = "outline" in keyword.lower() or "template" in keyword.lower() or bool(examples)
    if outline and rows == 0:
        problems.append(
            f"{shown}:{line}: {keyword} {scenario.get('name', '')!r} has no Examples rows: "
            "add an Examples table (a header and at least one row) or make it a plain Scenario"
        )
        return
    if not outline:
        return
    texts = [(scenario.get("name", ""), line)] + [
        (step["text"], step["location"]["line"]) for step in scenario.get("steps", [])
    ]
    for text, at in texts:
        for name in _PLACEHOLDER.findall(text):
            if name not in columns:
                problems.append(
                    f"{shown}:{at}: <{name}> is not a column of the Examples of {scenario.get('name', '')!r} "
                    f"(columns: {', '.join(sorted(columns)) or 'none'})"
                )


def _is_step(text: str, registry: list[StepDefinition]) -> bool:
    return any(d.match(text) is not None for d in registry)


def _find_line(shown: str, text: str, guess: int) -> int:
    try:
        for number, line in enumerate(Path(shown).read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip() == text:
                return number
    except OSError:
        pass
    return guess


def _error_line(exc: Exception) -> int:
    errors = getattr(exc, "errors", None) or [exc]
    location = getattr(errors[0], "location", None) or {}
    return int(location.get("line") or 1)


def _error_text(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or [exc]
    text = str(errors[0])
    return re.sub(r"^\(\d+:\d+\):\s*", "", text)
