"""Prove that the features can fail: each runs against a broken variant of the cluster (a mutant).

The cases (mutant, scenario, the step that must fail) are ``tools/mutation_score.py``'s table; each check
runs one real scenario with ``pytest --gherkin`` in a subprocess against the mutant (real processes,
~10-30 s each) and requires it to fail at the expected step. That the same scenarios pass on the real
cluster is what the acceptance stage shows (every feature runs there); ``python tools/mutation_score.py
--real`` shows both side by side. The cases marked slow in the table run with
``SERVINGBDD_SLOW_MUTANTS=1`` (or through the tool).

The selected cases start when the first of them runs, ``SERVINGBDD_MUTANT_JOBS`` at a time; each test
then waits for its own. A case spends much of its time waiting on services (a mutant often makes a step
wait out its whole timeout), so two at a time finish sooner where cores are to spare. The default is one
on a machine of two cores or fewer: there, beside the other test lane, a second case made a race-prone
catch (``unload_drops_in_flight``, whose window is the worker decoding a large request) miss once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tools.mutation_score import (
    CASES,
    CHECKED_ELSEWHERE,
    MUTANTS,
    ROOT,
    Case,
    Outcome,
    describe,
    mutant_names,
    run_case,
)

RUN_SLOW = os.environ.get("SERVINGBDD_SLOW_MUTANTS") == "1"
JOBS = max(1, int(os.environ.get("SERVINGBDD_MUTANT_JOBS") or (2 if (os.cpu_count() or 1) > 2 else 1)))


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


def _runs(case: Case) -> bool:
    return case.fast or RUN_SLOW


@pytest.fixture(scope="module")
def mutant_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Outcome]]]:
    """Every selected case that runs, started ``JOBS`` at a time in the order pytest will ask for them."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_the_feature_catches_the_mutant"
        and _runs(item.callspec.params["case"])
    ]
    pool = ThreadPoolExecutor(max_workers=JOBS, thread_name_prefix="mutant")
    try:
        yield {_id(case): pool.submit(run_case, case, mutant=True) for case in selected}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # an interrupted session starts no further case


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_feature_catches_the_mutant(case: Case, mutant_runs: dict[str, Future[Outcome]]) -> None:
    if not _runs(case):
        pytest.skip("slow mutant case: set SERVINGBDD_SLOW_MUTANTS=1 or run tools/mutation_score.py")
    outcome = mutant_runs[_id(case)].result()
    assert outcome.caught_by is not None, describe(outcome)
