"""A registry-style skeleton to paste for an undefined step (like ``--generate-missing``/Cucumber).

Numbers become ``{n:d}``/``{x:f}`` fields and double-quoted words ``"{text}"`` fields, so one snippet
covers the step's variants. The body raises NotImplementedError: the report keeps calling it a stub
until someone makes it drive a service.
"""

from __future__ import annotations

import re

from .model import FeatureStep

_TOKEN = re.compile(r'"[^"]*"|(?<![\w.])-?\d+\.\d+(?![\w.])|(?<![\w.])-?\d+(?![\w.])')


def step_pattern(text: str) -> tuple[str, list[str]]:
    pieces: list[str] = []
    params: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        pieces.append(text[pos : match.start()].replace("{", "{{").replace("}", "}}"))
        token = match.group()
        if token.startswith('"'):
            name, field = f"text{len(params) + 1}", '"{%s}"'
        elif "." in token:
            name, field = f"x{len(params) + 1}", "{%s:f}"
        else:
            name, field = f"n{len(params) + 1}", "{%s:d}"
        params.append(name)
        pieces.append(field % name)
        pos = match.end()
    pieces.append(text[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(pieces), params


def snippet(step: FeatureStep) -> str:
    keyword = "given" if step.kind == "any" else step.kind
    pattern, params = step_pattern(step.text)
    words = re.sub(r"[^a-z0-9]+", "_", re.sub(r'"[^"]*"', "", step.text.lower())).strip("_")
    name = f"{keyword}_{words[:50].rstrip('_') or 'step'}"
    args = ", ".join(["world", *params])
    return f"@{keyword}({pattern!r})\ndef {name}({args}):\n    raise NotImplementedError\n"
