"""A skeleton to paste for an undefined step, in the runner's own idiom (like ``--generate-missing`` or
Cucumber's snippets).

Numbers become ``{n:d}``/``{x:f}`` fields and double-quoted words ``"{text}"`` fields (cucumber
expressions: ``{int}``/``{float}``/``{string}``), so one snippet covers the step's variants. The body is a
pending marker: the report keeps calling it a stub until someone makes it drive something real.
"""

from __future__ import annotations

import re

from .model import FeatureStep

_TOKEN = re.compile(r'"[^"]*"|(?<![\w.])-?\d+\.\d+(?![\w.])|(?<![\w.])-?\d+(?![\w.])')


def step_pattern(text: str, cucumber: bool = False) -> tuple[str, list[str]]:
    pieces: list[str] = []
    params: list[str] = []
    pos = 0
    escape = (
        (lambda s: re.sub(r"([(){}/\\])", r"\\\1", s))
        if cucumber
        else (lambda s: s.replace("{", "{{").replace("}", "}}"))
    )
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


def _name(step: FeatureStep, keyword: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", re.sub(r'"[^"]*"', "", step.text.lower())).strip("_")
    return f"{keyword}_{words[:50].rstrip('_') or 'step'}"


def registry_snippet(step: FeatureStep) -> str:
    keyword = "given" if step.kind == "any" else step.kind
    pattern, params = step_pattern(step.text)
    args = ", ".join(["world", *params])
    return f"@{keyword}({pattern!r})\ndef {_name(step, keyword)}({args}):\n    raise NotImplementedError\n"


def behave_snippet(step: FeatureStep) -> str:
    keyword = "step" if step.kind == "any" else step.kind
    pattern, params = step_pattern(step.text)
    args = ", ".join(["context", *params])
    return (
        f"@{keyword}({pattern!r})\ndef step_impl({args}):\n"
        f"    raise NotImplementedError({(keyword.title() + ' ' + step.text)!r})\n"
    )


def pytest_bdd_snippet(step: FeatureStep) -> str:
    keyword = "given" if step.kind == "any" else step.kind
    pattern, params = step_pattern(step.text)
    decorator = f"@{keyword}(parsers.parse({pattern!r}))" if params else f"@{keyword}({step.text!r})"
    return f"{decorator}\ndef {_name(step, keyword)}({', '.join(params)}):\n    raise NotImplementedError\n"


def rust_snippet(step: FeatureStep) -> str:
    keyword = "given" if step.kind == "any" else step.kind
    pattern, params = step_pattern(step.text, cucumber=True)
    kinds = re.findall(r"\{(int|float|string)\}", pattern)
    types = {"int": "i64", "float": "f64", "string": "String"}
    args = "".join(f", {p}: {types[k]}" for p, k in zip(params, kinds, strict=False))
    return (
        f"#[{keyword}(expr = {pattern!r})]\n".replace("'", '"')
        + f"async fn {_name(step, keyword)}(world: &mut World{args}) {{\n    todo!()\n}}\n"
    )


snippet = registry_snippet
