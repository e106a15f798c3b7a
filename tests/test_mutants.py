"""Prove that the features can fail: each runs against a broken variant of the cluster (a mutant).

The cases (mutant, scenario, the step that must fail) are ``tools/mutation_score.py``'s table; each check
runs one real scenario with ``pytest --gherkin`` in a subprocess against the mutant (real processes,
~10-30 s each) and requires it to fail at the expected step. That the same scenarios pass on the real
cluster is what the acceptance stage shows (every feature runs there); ``python tools/mutation_score.py
--real`` shows both side by side. The cases marked slow in the table run with
``SERVINGBDD_SLOW_MUTANTS=1`` (or through the tool).
"""

from __future__ import annotations

import os

import pytest

from tools.mutation_score import (
    CASES,
    CHECKED_ELSEWHERE,
    MUTANTS,
    ROOT,
    Case,
    describe,
    mutant_names,
    run_case,
)

RUN_SLOW = os.environ.get("SERVINGBDD_SLOW_MUTANTS") == "1"


def _id(case: Case) -> str:
    return f"{case.mutant}@{case.feature}" + (f"[{case.keyword}]" if case.keyword else "")


def test_every_mutant_is_mapped_to_a_scenario() -> None:
    on_disk = {p.parent.name for p in MUTANTS.glob("*/sitecustomize.py")} - set(CHECKED_ELSEWHERE)
    assert on_disk == set(mutant_names()), (
        f"unmapped mutants {sorted(on_disk - set(mutant_names()))}, "
        f"mapped but missing {sorted(set(mutant_names()) - on_disk)}"
    )


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_catching_step_is_in_its_feature(case: Case) -> None:
    """The table names steps the features really have (up to an outline's first placeholder value)."""
    text = (ROOT / "features" / f"{case.feature}.feature").read_text(encoding="utf-8")
    head = case.step.split('"')[0].strip()
    assert head in text, f"features/{case.feature}.feature has no step starting {head!r}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_feature_catches_the_mutant(case: Case) -> None:
    if not case.fast and not RUN_SLOW:
        pytest.skip("slow mutant case: set SERVINGBDD_SLOW_MUTANTS=1 or run tools/mutation_score.py")
    outcome = run_case(case, mutant=True)
    assert outcome.caught_by is not None, describe(outcome)
