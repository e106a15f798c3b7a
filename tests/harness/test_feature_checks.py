"""Malformed feature files and undefined steps stop both runners before anything starts, with file:line.

Checked the way a QA engineer checks a new feature file: ``pytest --gherkin --collect-only`` and
``behave --dry-run``; and a real run stops just the same, before any service starts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_runners import BEHAVE, _env, _features

MALFORMED = {
    "outline without examples": (
        """\
Feature: A scenario outline needs examples
  Scenario Outline: Workers <workers> serve
    Given the demo model with versions "1"
""",
        "case.feature:2",
        "has no Examples rows",
    ),
    "placeholder without a column": (
        """\
Feature: Every placeholder needs a column
  Scenario Outline: A version is served
    Given the demo model with versions "<version>"

    Examples:
      | other |
      | 1     |
""",
        "case.feature:3",
        "<version> is not a column of the Examples",
    ),
    "step line before the first scenario": (
        """\
Feature: A step written as description
  Given the demo model with versions "1"

  Scenario: Something runs
    Given the demo model with versions "1"
""",
        "case.feature:2",
        "a step line before the first Scenario",
    ),
}

UNDEFINED_TWICE = """\
Feature: Two undefined steps in two scenarios
  Scenario: One
    Given the demo model with versions "1"
    When the operator waves a magic wand

  Scenario: Two
    Given the demo model with versions "1"
    Then the moon turns blue
"""


def _check(features: Path, runner: str, *, dry: bool = True) -> subprocess.CompletedProcess[str]:
    if runner == "pytest":
        argv = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:locust", "--gherkin"]
        argv += ["--backend", "local", "--features", str(features)] + (["--collect-only"] if dry else [])
        argv[0] = str(BEHAVE.with_name("python"))
    else:
        argv = [str(BEHAVE), "--no-junit", "-D", "backend=local", str(features)] + (
            ["--dry-run"] if dry else []
        )
    return subprocess.run(argv, cwd=features.parent, env=_env(), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("runner", ["pytest", "behave"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_feature_file_is_a_hard_error_with_its_line(
    tmp_path: Path, runner: str, case: str
) -> None:
    text, where, what = MALFORMED[case]
    result = _check(_features(tmp_path, text), runner)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert where in output and what in output, output


@pytest.mark.parametrize("runner", ["pytest", "behave"])
def test_every_undefined_step_is_reported_at_once_before_anything_runs(tmp_path: Path, runner: str) -> None:
    result = _check(_features(tmp_path, UNDEFINED_TWICE), runner)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    for text, line in (("the operator waves a magic wand", 4), ("the moon turns blue", 8)):
        assert text in output and f"case.feature:{line}" in output, output
    assert "2 undefined or ambiguous step(s)" in output or "2 problem(s)" in output, output


STARTS_A_CLUSTER = """\
Feature: A malformed file that would start a cluster
  Scenario Outline: A version is served
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "<version>"

    Examples:
      | other |
      | 1     |
"""


@pytest.mark.parametrize("runner", ["pytest", "behave"])
def test_a_real_run_stops_on_a_malformed_file_before_any_step_runs(tmp_path: Path, runner: str) -> None:
    result = _check(_features(tmp_path, STARTS_A_CLUSTER), runner, dry=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "case.feature:4" in output, output
    assert "starting gateway" not in output and "✓" not in output and "passed" not in output, output


UNMET_SETUP = """\
Feature: A step needing a set-up the scenario lacks
  Scenario: A link is cut in a cluster whose links take no faults
    Given the demo model with versions "1"
    And a cluster with 2 workers serving demo version "1"
    When the network between the gateway and worker-2 is cut

  Scenario: A cluster table with an option nobody knows
    Given the demo model with versions "1"
    And a cluster serving demo version "1" with:
      | workers    | 2           |
      | heartbeats | 0.3 seconds |
    Then the gateway lists 2 workers
"""


@pytest.mark.parametrize("runner", ["pytest", "behave"])
def test_a_missing_set_up_and_a_wrong_cluster_table_are_errors_before_anything_starts(
    tmp_path: Path, runner: str
) -> None:
    result = _check(_features(tmp_path, UNMET_SETUP), runner)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert (
        "case.feature:5: 'When the network between the gateway and worker-2 is cut': needs a cluster whose "
        "links accept network faults: add the step 'And the cluster's links accept network faults'" in output
    ), output
    assert (
        "case.feature:9: 'Given a cluster serving demo version \"1\" with:': unknown cluster option "
        "'heartbeats'" in output
    ), output
