"""The code suggested for an undefined step: one generator (harness.snippets) for the runners and the
stub report, and what it writes is a step definition that matches the step it was made for."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from harness.snippets import snippet
from harness.steps_registry import StepDefinition
from tools.stubreport.model import FeatureStep
from tools.stubreport.snippets import registry_snippet

ROOT = Path(__file__).resolve().parents[2]
STEPS = [
    ("when", "the operator waves a magic wand over 3 workers"),
    ("then", 'the gateway answers "ok" to -2 requests within 1.5 seconds'),
    ("given", "a model {literally} braced, it's fine"),
    ("any", 'a "quoted" step with both \' and "'),  # the stub report's kind for a step of any keyword
]


@pytest.mark.parametrize(("kind", "text"), STEPS)
def test_the_report_suggests_what_a_run_prints(kind: str, text: str) -> None:
    step = FeatureStep("features/x.feature", 4, "And ", kind, text, "a scenario")
    assert registry_snippet(step) == snippet(kind, text)


def _definition(code: str) -> tuple[str, str, str, list[str]]:
    """(keyword, pattern, example, parameters after ``world``) of the snippet's one function."""
    (func,) = [node for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)]
    (decorator,) = func.decorator_list
    assert isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
    (pattern,) = (ast.literal_eval(a) for a in decorator.args)
    (example,) = (ast.literal_eval(k.value) for k in decorator.keywords if k.arg == "example")
    names = [a.arg for a in func.args.args]
    assert names[0] == "world"
    return decorator.func.id, pattern, example, names[1:]


@pytest.mark.parametrize(("kind", "text"), STEPS)
def test_the_snippet_matches_its_step_with_a_field_per_value(kind: str, text: str) -> None:
    keyword, pattern, example, params = _definition(snippet(kind, text))
    assert keyword == (kind if kind != "any" else "given")
    assert example == f"{keyword.capitalize()} {text}"
    values = StepDefinition(keyword, pattern, lambda world: None).match(text)
    assert values is not None and list(values) == params, (pattern, values)
    if "3 workers" in text:
        assert values == {"n1": 3}
    if "1.5 seconds" in text:
        assert values == {"text1": "ok", "n2": -2, "x3": 1.5}


@pytest.mark.parametrize(("kind", "text"), STEPS)
def test_the_pasted_snippet_passes_the_projects_lint(tmp_path: Path, kind: str, text: str) -> None:
    module = tmp_path / "new_steps.py"
    module.write_text('"""New steps."""\n\n' + snippet(kind, text))
    config = ["--config", str(ROOT / "pyproject.toml")]
    for args in (["check", *config], ["format", "--check", *config]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, str(module)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr + module.read_text()
