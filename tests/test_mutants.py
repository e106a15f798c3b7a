"""Prove that the features can fail: each runs against a broken variant of the cluster (a mutant).

A mutant is ``tests/mutants/<name>/sitecustomize.py``, put first on the services' PYTHONPATH through
``SERVINGBDD_SUT_PYTHONPATH``; it patches one ``sut`` function when a service starts. Each check runs one
real scenario of ``features/`` with ``pytest --gherkin`` in a subprocess (real processes, ~20 s each).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "tests" / "mutants"

pytestmark = pytest.mark.slow

# ``-k`` expressions selecting exactly one scenario each: scenario tests are named by their titles (the
# feature file's name counts too, hence "not back" for the swap scenario of hot_swap.feature).
CHURN_KILLED = "registry and killed"  # Workers that are <stopped> leave the registry[killed]
SWAP_UNDER_LOAD = "continuous and swap and not back"  # Swap from version 1 to version 2 under continuous load
BUDGET_REFUSES = "budget and refuses"  # The worker's memory budget refuses a model larger than the budget
REGISTER_AT_ONCE = "register and once"  # 50 workers register at once
ONLY_WORKER_CUT_OFF = "only and cut and unavailable"  # With its only worker cut off, the model is ...
SLOW_LINK = "slow and link and deadline"  # A slow link delays the answers, and beyond the deadline ...
QUICK_ERROR = "quick and error and restarted"  # The client of a killed worker gets a quick error and ...
NO_BETTER = "better and rejected"  # A retrained model that does no better is rejected and ...
DAMAGED_HEADER = "damaged and header"  # The catalog database file is damaged (<damage>) ...[its header]


def _run_feature(keyword: str, mutant: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("SERVINGBDD_SUT_PYTHONPATH", None)
    if mutant is not None:
        env["SERVINGBDD_SUT_PYTHONPATH"] = str(MUTANTS / mutant)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
        "--gherkin", "--backend", "local", "-k", keyword, "--tb=line",
    ]  # fmt: skip
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    # exactly one scenario ran (a -k that selects nothing, or two, would prove nothing)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    ran = sum(int(n) for n, _ in re.findall(r"(\d+) (passed|failed|errors?)\b", summary))
    assert ran == 1, f"-k {keyword!r} ran {ran} scenarios: {summary}\n{result.stdout[-3000:]}"
    return result


def test_worker_churn_catches_a_gateway_that_never_expires_workers() -> None:
    mutant = _run_feature(CHURN_KILLED, "never_expire")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 3 seconds the gateway lists 1 worker" in mutant.stdout, mutant.stdout[-3000:]
    assert "it still lists 3" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature(CHURN_KILLED, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_hot_swap_catches_a_worker_that_releases_the_old_model_before_loading_the_new() -> None:
    mutant = _run_feature(SWAP_UNDER_LOAD, "release_before_load")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ And during the swap every request was answered successfully" in mutant.stdout, mutant.stdout[
        -3000:
    ]
    # the mutant's signature: the worker no longer holds the version the gateway routes to it
    assert "is not loaded on this worker" in mutant.stdout, mutant.stdout[-3000:]


def test_oom_catches_a_worker_that_loads_past_its_memory_budget() -> None:
    mutant = _run_feature(BUDGET_REFUSES, "over_budget")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    refused = "✗ Then the swap of demo is refused as over the memory budget"
    assert refused in mutant.stdout, mutant.stdout[-3000:]
    assert "the gateway answered 200" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature(BUDGET_REFUSES, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_concurrency_catches_a_registration_that_is_not_atomic() -> None:
    mutant = _run_feature(REGISTER_AT_ONCE, "racy_registration")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 30 seconds the gateway lists 51 workers" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature(REGISTER_AT_ONCE, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_network_partition_catches_a_gateway_that_never_expires_an_unreachable_worker() -> None:
    mutant = _run_feature(ONLY_WORKER_CUT_OFF, "never_expire")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 3 heartbeat intervals the gateway no longer lists worker-1" in mutant.stdout, (
        mutant.stdout[-3000:]
    )

    real = _run_feature(ONLY_WORKER_CUT_OFF, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_network_partition_catches_a_gateway_without_a_deadline_on_upstream_calls() -> None:
    mutant = _run_feature(SLOW_LINK, "no_deadline")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then 5 inference requests for demo are each answered 504 or 503 within 1.5 seconds" in (
        mutant.stdout
    ), mutant.stdout[-3000:]

    real = _run_feature(SLOW_LINK, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_worker_restart_catches_a_gateway_that_waits_on_a_dead_worker() -> None:
    mutant = _run_feature(QUICK_ERROR, "hang_on_dead_worker")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then the request is answered 502 or 503 within 2 seconds of the kill" in mutant.stdout, (
        mutant.stdout[-3000:]
    )
    assert "got 504" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature(QUICK_ERROR, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_drift_retrain_catches_a_trainer_that_skips_the_held_out_check() -> None:
    mutant = _run_feature(NO_BETTER, "skip_holdout_check")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    rejected = "✗ And the retraining run of demo is rejected with a reason saying"
    assert rejected in mutant.stdout, mutant.stdout[-3000:]
    assert "it ended 'completed' with new version '2'" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature(NO_BETTER, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_database_corruption_catches_a_gateway_that_dies_on_a_corrupt_database() -> None:
    mutant = _run_feature(DAMAGED_HEADER, "dies_on_corrupt_db")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ Then within 5 seconds the gateway reports its catalog database corrupt" in mutant.stdout, (
        mutant.stdout[-3000:]
    )

    real = _run_feature(DAMAGED_HEADER, None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_security_catches_a_gateway_that_registers_workers_without_the_join_token() -> None:
    mutant = _run_feature("clients_traffic and admin", "open_registration")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert "✗ And the stranger's worker received no inference request" in mutant.stdout, mutant.stdout[-3000:]
    assert "expected no client request to reach stranger-1" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("clients_traffic and admin", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_security_catches_a_gateway_that_takes_any_token_for_the_join_token() -> None:
    mutant = _run_feature("cannot_register_a_worker and wrong", "any_join_token")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert '✗ Then the gateway refuses it with 401 saying "wrong join token"' in mutant.stdout, mutant.stdout[
        -3000:
    ]
    assert "the gateway answered 200" in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("cannot_register_a_worker and wrong", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_security_catches_a_gateway_that_lets_a_worker_deregister_another() -> None:
    mutant = _run_feature("may_only_heartbeat", "deregister_others")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    refused = '✗ Then the gateway refuses it with 403 saying "a worker may only deregister itself"'
    assert refused in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("may_only_heartbeat", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_provider_failover_catches_a_gateway_that_fails_over_on_client_errors() -> None:
    mutant = _run_feature("bad_input", "failover_on_client_errors")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    assert '✗ Then every one of them is answered 400 by provider "primary"' in mutant.stdout, mutant.stdout[
        -3000:
    ]

    real = _run_feature("bad_input", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_provider_failover_catches_a_gateway_without_a_hold_time() -> None:
    mutant = _run_feature("flapping", "no_hold_time")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    flaps = "✗ Then while it flapped the lock of demo failed over at most once per hold period"
    assert flaps in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("flapping", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_provider_failover_catches_two_providers_answering_at_once() -> None:
    mutant = _run_feature("takes_over and 503", "two_providers_answer")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    named = "✗ And every answer during the load names the provider that held the lock of demo at that moment"
    assert named in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("takes_over and 503", None)
    assert real.returncode == 0, real.stdout[-3000:]


def test_provider_failover_catches_a_lock_lost_on_restart() -> None:
    mutant = _run_feature("restarted", "lock_lost_on_restart")
    assert mutant.returncode == 1, mutant.stdout[-3000:]
    kept = '✗ Then provider "backup" still holds the lock of demo with its counters'
    assert kept in mutant.stdout, mutant.stdout[-3000:]

    real = _run_feature("restarted", None)
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
