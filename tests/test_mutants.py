"""Prove that the features can fail: each runs against a broken variant of the cluster (a mutant).

A mutant is ``tests/mutants/<name>/sitecustomize.py``, put first on the services' PYTHONPATH through
``HARNESS_SUT_PYTHONPATH``; it patches one ``sut`` function when a service starts. Each check runs one
real scenario of ``features/`` with ``pytest --gherkin`` in a subprocess (real processes, ~20 s each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# Once the project is pip-installed, pytest loads the plugin through its pytest11 entry point; naming it
# again with -p would register it twice.
PLUGIN = (
    []
    if any(ep.name == "servingbdd" for ep in entry_points(group="pytest11"))
    else ["-p", "harness.pytest_plugin"]
)

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "tests" / "mutants"

pytestmark = pytest.mark.slow


def _run_feature(keyword: str, mutant: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("HARNESS_SUT_PYTHONPATH", None)
    if mutant is not None:
        env["HARNESS_SUT_PYTHONPATH"] = str(MUTANTS / mutant)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    argv = [
        sys.executable, "-m", "pytest", *PLUGIN, "-p", "no:cacheprovider",
        "--gherkin", "--backend", "local", "-k", keyword, "--tb=line",
    ]  # fmt: skip
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_worker_churn_catches_a_gateway_that_never_expires_workers() -> None:
    mutant = _run_feature("killed", "never_expire")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 3 seconds the gateway lists 1 worker" in mutant.stdout, mutant.stdout[-3000:]
    assert "it still lists 3" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("killed", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_hot_swap_catches_a_worker_that_releases_the_old_model_before_loading_the_new() -> None:
    mutant = _run_feature("version_1_to_version_2", "release_before_load")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ And during the swap every request was answered successfully" in mutant.stdout, mutant.stdout[
        -3000:
    ]
    # the mutant's signature: the worker no longer holds the version the gateway routes to it
    assert "is not loaded on this worker" in mutant.stdout, mutant.stdout[-3000:]


def test_oom_catches_a_worker_that_loads_past_its_memory_budget() -> None:
    mutant = _run_feature("memory_budget_refuses", "over_budget")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    refused = "✗ Then the swap of demo is refused as over the memory budget"
    assert refused in mutant.stdout, mutant.stdout[-3000:]
    assert "the gateway answered 200" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("memory_budget_refuses", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_concurrency_catches_a_registration_that_is_not_atomic() -> None:
    mutant = _run_feature("register_at_once", "racy_registration")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 30 seconds the gateway lists 51 workers" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("register_at_once", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_network_partition_catches_a_gateway_that_never_expires_an_unreachable_worker() -> None:
    mutant = _run_feature("only_worker_cut_off", "never_expire")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 3 heartbeat intervals the gateway no longer lists worker-1" in mutant.stdout, (
        mutant.stdout[-3000:]
    )

    real = _run_feature("only_worker_cut_off", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_network_partition_catches_a_gateway_without_a_deadline_on_upstream_calls() -> None:
    mutant = _run_feature("slow_link", "no_deadline")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then 5 inference requests for demo are each answered 504 or 503 within 1.5 seconds" in (
        mutant.stdout
    ), mutant.stdout[-3000:]

    real = _run_feature("slow_link", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_worker_restart_catches_a_gateway_that_waits_on_a_dead_worker() -> None:
    mutant = _run_feature("killed_worker_gets_a_quick_error", "hang_on_dead_worker")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then the request is answered 502 or 503 within 2 seconds of the kill" in mutant.stdout, (
        mutant.stdout[-3000:]
    )
    assert "got 504" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("killed_worker_gets_a_quick_error", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_drift_retrain_catches_a_trainer_that_skips_the_held_out_check() -> None:
    mutant = _run_feature("does_no_better", "skip_holdout_check")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    rejected = "✗ And the retraining run of demo is rejected with a reason saying"
    assert rejected in mutant.stdout, mutant.stdout[-3000:]
    assert "it ended 'completed' with new version '2'" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("does_no_better", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_database_corruption_catches_a_gateway_that_dies_on_a_corrupt_database() -> None:
    mutant = _run_feature("damaged and header", "dies_on_corrupt_db")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 5 seconds the gateway reports its catalog database corrupt" in mutant.stdout, (
        mutant.stdout[-3000:]
    )

    real = _run_feature("damaged and header", None)
    assert real.returncode == 0, real.stdout[-3000:]


# -- versioning and routing (issue 11) ---------------------------------------------------------------------
def _caught(keyword: str, mutant: str, failed_step: str, *signatures: str) -> None:
    """The scenario fails on the mutant at ``failed_step``, with each signature in the output, and passes on
    the real cluster."""
    run = _run_feature(keyword, mutant)
    assert run.returncode == 1, run.stdout[-3000:]
    assert f"✗ {failed_step}" in run.stdout, run.stdout[-3000:]
    for text in signatures:
        assert text in run.stdout, run.stdout[-3000:]
    real = _run_feature(keyword, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_ab_testing_catches_a_split_that_ignores_the_weights() -> None:
    _caught(
        "split_is_honoured",
        "split_ignores_weights",
        "Then the share of answers from each version lies within the 99 % binomial interval of its weight",
        "is outside its interval",
    )


def test_ab_testing_catches_a_worker_computing_with_the_wrong_model_under_the_right_label() -> None:
    _caught(
        "split_is_honoured",
        "wrong_model_right_label",
        "And every answer's outputs are what the version that answered computes for its input",
        "carried outputs their version does not compute",
    )


def test_canary_rollout_catches_a_controller_that_never_rolls_back() -> None:
    _caught(
        "rolled_back_at_the_first_stage and fails",
        "canary_never_rolls_back",
        "Then within 60 seconds the canary of demo is rolled back at the 5 % stage",
        "it is 'promoted'",
    )


def test_shadow_mode_catches_shadow_answers_leaking_to_clients() -> None:
    _caught(
        "every_request",
        "shadow_leaks",
        'Then every answer since the shadow began came from version "1"',
        "from '2'",
    )


def test_emergency_rollback_catches_an_alert_that_rolls_back_to_the_wrong_version() -> None:
    _caught(
        "rolled_back_by_the_alert",
        "alert_wrong_version",
        'Then within 30 seconds the alert on demo fires and demo is rolled back to version "2"',
        "it rolled back to '1'",
    )


def test_multi_version_catches_an_unload_that_keeps_the_memory() -> None:
    _caught(
        "frees_its_memory",
        "unload_keeps_memory",
        "Then the resident memory of every worker dropped by at least 80 % of what it reported for version",
        "expected at least 80 % of that freed",
    )


def test_multi_version_catches_a_gateway_that_ignores_the_named_version() -> None:
    _caught(
        "answer_for_themselves",
        "ignores_explicit_version",
        "Then every answer came from the version its request named, with that version's own outputs",
        "expected every request to be answered by the version it named",
    )


def test_time_based_routing_catches_a_clock_an_hour_off() -> None:
    _caught(
        "office_hours_happens",
        "time_rule_hour_off",
        'Then requests for demo are answered by version "2" until 17:00:00 and by version "1" from then on',
        "before the boundary, answers not from '2'",
    )


def test_lineage_catches_a_catalog_that_drops_the_parent() -> None:
    _caught(
        "grandchild",
        "drops_parent",
        'Then the parent of demo version "2" is "1"',
        "expected parent '1' of demo version '2'",
    )
