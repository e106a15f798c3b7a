"""docs/steps.md is what tools/step_docs.py generates from the step registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_steps_doc_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "step_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{result.stderr.strip()}\n(regenerate with: python tools/step_docs.py)"


def test_every_step_is_documented_with_a_docstring_and_an_example() -> None:
    from harness.steps_registry import load_step_library

    undocumented = [
        f"{d.keyword} {d.pattern} ({d.location})" for d in load_step_library() if not d.func.__doc__
    ]
    no_example = [f"{d.keyword} {d.pattern} ({d.location})" for d in load_step_library() if not d.example]
    assert not undocumented, f"steps without a docstring: {undocumented}"
    assert not no_example, f"steps without an example: {no_example}"


def test_every_example_matches_its_own_pattern() -> None:
    from harness.steps_registry import load_step_library

    broken = []
    for d in load_step_library():
        # an example may go on with a table or a docstring under its first line
        keyword, _, text = (d.example or "").splitlines()[0].partition(" ")
        if keyword.lower() not in ("given", "when", "then", "and", "but") or d.match(text) is None:
            broken.append(f"{d.example!r} does not match {d.keyword} {d.pattern!r} ({d.location})")
    assert not broken, "\n".join(broken)
