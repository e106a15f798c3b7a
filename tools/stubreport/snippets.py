"""A skeleton to paste for an undefined step, in the runner's own idiom (like ``--generate-missing`` or
Cucumber's snippets).

Our registry's snippet is :func:`harness.snippets.snippet`, the one the runners print for an undefined
step, so that the report and a run suggest the same code; the other runners' idioms use the same pattern
(numbers and quoted words become fields, :func:`harness.snippets.step_pattern`) and function names. The
body is a pending marker: the report keeps calling it a stub until someone makes it drive something real.
"""

from __future__ import annotations

import re

from harness.snippets import function_name, step_pattern
from harness.snippets import snippet as _registry_snippet

from .model import FeatureStep


def registry_snippet(step: FeatureStep) -> str:
    """Exactly what a run prints for this undefined step (one generator: :mod:`harness.snippets`)."""
    return _registry_snippet(step.kind, step.text)


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
    name = function_name(keyword, step.text)
    return f"{decorator}\ndef {name}({', '.join(params)}):\n    raise NotImplementedError\n"


def rust_snippet(step: FeatureStep) -> str:
    keyword = "given" if step.kind == "any" else step.kind
    pattern, params = step_pattern(step.text, cucumber=True)
    kinds = re.findall(r"\{(int|float|string)\}", pattern)
    types = {"int": "i64", "float": "f64", "string": "String"}
    args = "".join(f", {p}: {types[k]}" for p, k in zip(params, kinds, strict=False))
    return (
        f"#[{keyword}(expr = {pattern!r})]\n".replace("'", '"')
        + f"async fn {function_name(keyword, step.text)}(world: &mut World{args}) {{\n    todo!()\n}}\n"
    )


snippet = registry_snippet
