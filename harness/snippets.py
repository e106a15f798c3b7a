"""What to tell a QA engineer whose feature uses a step that the library does not define.

Both runners show the same text: the step, where it is, library steps that come close, and a snippet
written with *our* registry's decorators (so the new step works under pytest-bdd and behave alike).
:func:`snippet` is the one generator of that code: ``tools/stub_report.py`` calls it too, so an undefined
step gets the same suggestion from a run and from the report.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: tools/stub_report.py imports this module without the registry
    from harness.steps_registry import StepDefinition

KEYWORDS = ("given", "when", "then")
#: A quoted value, a decimal or an integer of the step text: each becomes a field of the pattern.
_TOKEN = re.compile(r'"[^"]*"|(?<![\w.])-?\d+\.\d+(?![\w.])|(?<![\w.])-?\d+(?![\w.])')
_TYPES = {"n": "int", "x": "float", "text": "str"}
LINE_LENGTH = 110  # pyproject.toml's [tool.ruff] line-length


def pattern_for(text: str) -> str:
    """A ``parse`` pattern matching ``text`` literally (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def step_pattern(text: str, cucumber: bool = False) -> tuple[str, list[str]]:
    """The pattern for ``text`` and its field names: numbers become ``{n1:d}``/``{x1:f}`` and quoted
    words ``"{text1}"`` (cucumber expressions: ``{int}``/``{float}``/``{string}``), so that one
    definition covers the step's variants."""
    pieces: list[str] = []
    params: list[str] = []
    pos = 0
    escape = (lambda s: re.sub(r"([(){}/\\])", r"\\\1", s)) if cucumber else pattern_for
    for match in _TOKEN.finditer(text):
        pieces.append(escape(text[pos : match.start()]))
        token = match.group()
        if token.startswith('"'):
            name, field = f"text{len(params) + 1}", "{string}" if cucumber else '"{%s}"'
        elif "." in token:
            name, field = f"x{len(params) + 1}", "{float}" if cucumber else "{%s:f}"
        else:
            name, field = f"n{len(params) + 1}", "{int}" if cucumber else "{%s:d}"
        params.append(name)
        pieces.append(field if cucumber else field % name)
        pos = match.end()
    pieces.append(escape(text[pos:]))
    return "".join(pieces), params


def function_name(keyword: str, text: str) -> str:
    """``when_the_operator_waves_...``: the step's words without the values its pattern makes fields."""
    words = re.sub(r"[^a-z0-9]+", "_", _TOKEN.sub("", text.lower())).strip("_")
    return f"{keyword}_{words[:50].rstrip('_') or 'step'}"


def snippet(keyword: str, text: str) -> str:
    """The step definition to paste into a module of ``steps/``: a pattern with a field per value, the
    step as written for ``example=``, a pending body (the stub report calls it a stub until it drives
    something)."""
    keyword = keyword.lower() if keyword.lower() in KEYWORDS else "given"
    pattern, params = step_pattern(text)
    example = _literal(f"{keyword.capitalize()} {text}")
    args = "".join(f", {p}: {_TYPES[p.rstrip('0123456789')]}" for p in params)
    decorator = f"@{keyword}({_literal(pattern)}, example={example})"
    if len(decorator) > LINE_LENGTH:  # as ruff format would write it, so that the pasted code passes lint
        decorator = f"@{keyword}(\n    {_literal(pattern)},\n    example={example},\n)"
    return (
        f"from harness.steps_registry import {keyword}\n"
        "from harness.world import World\n\n\n"
        f"{decorator}\n"
        f"def {function_name(keyword, text)}(world: World{args}) -> None:\n"
        '    """One line: what this step does to (or observes on) the running cluster."""\n'
        "    raise NotImplementedError  # call a driver on `world`, assert on what the service answered\n"
    )


def _literal(text: str) -> str:
    """A Python string literal for ``text`` quoted as ruff format would (single quotes when they escape
    less), so that a pasted snippet passes the lint."""
    quote = "'" if text.count('"') > text.count("'") else '"'
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
