"""What to tell a QA engineer whose feature uses a step that the library does not define.

Both runners show the same text: the step, where it is, library steps that come close, and a snippet
written with *our* registry's decorators (so the new step works under pytest-bdd and behave alike).
"""

from __future__ import annotations

import contextlib
import difflib
import re
from pathlib import Path

from harness.steps_registry import StepDefinition

KEYWORDS = ("given", "when", "then")


def pattern_for(text: str) -> str:
    """A ``parse`` pattern matching ``text`` literally (braces doubled), numbers left for the author."""
    return text.replace("{", "{{").replace("}", "}}")


def snippet(keyword: str, text: str) -> str:
    """The step definition to paste into a module of ``steps/``."""
    keyword = keyword.lower() if keyword.lower() in KEYWORDS else "given"
    pattern = _literal(pattern_for(text))
    example = _literal(f"{keyword.capitalize()} {text}")
    return (
        f"from harness.steps_registry import {keyword}\n\n\n"
        f"@{keyword}({pattern}, example={example})\n"
        "def step_impl(world):\n"
        '    """One line: what this step does to (or observes on) the running cluster."""\n'
        "    raise NotImplementedError  # call a driver on `world`, assert on what the service answered\n"
    )


def _literal(text: str) -> str:
    """A Python string literal for ``text``, single-quoted when the text holds double quotes."""
    quote = "'" if '"' in text and "'" not in text else '"'
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


#: The project root: the directory holding ``harness/`` and ``steps/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def short_location(location: str) -> str:
    """``/abs/path/steps/x.py:12`` -> ``steps/x.py:12`` (relative to the project root when inside it)."""
    path, _, line = location.rpartition(":")
    with contextlib.suppress(ValueError):
        path = Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    return f"{path}:{line}"


def _where(definition: StepDefinition) -> str:
    return short_location(definition.location)


def _shape(text: str) -> str:
    """Step text with quoted values and numbers blanked, for fuzzy comparison with examples."""
    return re.sub(r'"[^"]*"|\d+(?:\.\d+)?', "_", text.lower())


def close_matches(keyword: str, text: str, registry: list[StepDefinition], limit: int = 3) -> list[str]:
    candidates: dict[str, str] = {}
    for d in registry:
        example = d.example or f"{d.keyword.capitalize()} {d.pattern}"
        body = example.split(" ", 1)[1] if example.split(" ", 1)[0].lower() in KEYWORDS else example
        candidates[_shape(body)] = f"{d.keyword.capitalize()} {d.pattern}   ({_where(d)})"
    found = difflib.get_close_matches(_shape(text), list(candidates), n=limit, cutoff=0.6)
    return [candidates[f] for f in found]


def other_keyword(keyword: str, text: str, registry: list[StepDefinition]) -> list[StepDefinition]:
    """Library steps that match ``text`` under another keyword (Given vs When vs Then)."""
    return [d for d in registry if d.keyword != keyword.lower() and d.match(text) is not None]


def undefined_step_message(keyword: str, text: str, location: str, registry: list[StepDefinition]) -> str:
    lines = [f"Undefined step at {location}:", f"    {keyword.capitalize()} {text}", ""]
    others = other_keyword(keyword, text, registry)
    if others:
        lines += [
            f"The library defines it as a {others[0].keyword.capitalize()} step ({_where(others[0])}); "
            f"use that keyword (or And/But after it) in the feature.",
            "",
        ]
    near = close_matches(keyword, text, registry)
    if near:
        lines += ["Closest steps in the library (see docs/steps.md):", *(f"    {n}" for n in near), ""]
    lines += ["Or add a step to a module of steps/ (it then works under pytest --gherkin and behave):", ""]
    lines += [f"    {line}" if line else "" for line in snippet(keyword, text).splitlines()]
    return "\n".join(lines)
