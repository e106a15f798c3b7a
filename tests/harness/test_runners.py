"""Both runners on a tiny features directory, in subprocesses: undefined steps, library steps, the trace.

Cheap: the only library step used builds demo ONNX artifacts (a file touch); no cluster is started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# The plugin comes in through its pytest11 entry point (``pip install -e .``); nothing names it with -p.
PLUGIN_ENTRY_POINT = "servingbdd"

ROOT = Path(__file__).resolve().parents[2]
BEHAVE = Path(sys.executable).with_name("behave")

UNDEFINED = """\
Feature: Undefined steps are reported helpfully
  Scenario: A step nobody wrote yet
    Given the demo model with versions "1"
    When the operator waves a magic wand over 3 workers
"""

LIBRARY = """\
Feature: A library step runs
  Scenario: Build the demo artifacts
    Given the demo model with versions "1" and "2"
"""

FAILING = """\
Feature: A failing scenario carries the services' logs
  Scenario: The production version is not what the feature expects
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1"
    Then the production version of demo is "9"
"""

ENVIRONMENT = """\
from harness.behave_env import after_all, after_scenario, after_step, before_all, before_scenario, before_step
"""

STEPS = "from harness.behave_env import register_steps\n\nregister_steps()\n"


def _features(tmp_path: Path, text: str) -> Path:
    features = tmp_path / "features"
    (features / "steps").mkdir(parents=True)
    (features / "case.feature").write_text(text)
    (features / "environment.py").write_text(ENVIRONMENT)
    (features / "steps" / "library.py").write_text(STEPS)
    return features


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("SERVINGBDD_SUT_PYTHONPATH", None)
    return env


def _pytest(features: Path, trace: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "pytest",
        "-p", "no:locust", "-p", "no:cacheprovider",
        "--gherkin", "--backend", "local", "--features", str(features), "--step-trace", str(trace),
    ]  # fmt: skip
    return subprocess.run(argv, cwd=features.parent, env=_env(), capture_output=True, text=True, timeout=180)


def _behave(features: Path, trace: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(BEHAVE), "--no-junit", "-D", "backend=local", "-D", f"step_trace={trace}", str(features)]
    return subprocess.run(argv, cwd=features.parent, env=_env(), capture_output=True, text=True, timeout=180)


def _trace(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


RUNNERS = {"pytest": _pytest, "behave": _behave}


def test_the_pytest_plugin_comes_in_through_its_entry_point() -> None:
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == PLUGIN_ENTRY_POINT]
    assert plugin.value == "harness.pytest_plugin"
    assert hasattr(plugin.load(), "pytest_addoption"), "the entry point must name the plugin package"


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_an_undefined_step_fails_with_its_text_location_and_a_snippet(tmp_path: Path, runner: str) -> None:
    features = _features(tmp_path, UNDEFINED)
    result = RUNNERS[runner](features, tmp_path / "trace.jsonl")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "the operator waves a magic wand over 3 workers" in output
    assert "case.feature:4" in output, output
    assert '"the operator waves a magic wand over {n1:d} workers",' in output, output  # harness.snippets
    assert "from harness.steps_registry import when" in output, output
    # checked before anything runs: the run stops (exit 2) before any step runs or any service starts
    assert result.returncode == 2, output
    if runner == "pytest":
        assert "1 undefined or ambiguous step(s) or unmet set-ups in the selected scenarios" in output, output
    else:
        assert "1 problem(s) in the feature files" in output, output
    assert not (tmp_path / "trace.jsonl").exists() or not _trace(tmp_path / "trace.jsonl")


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_a_library_step_runs_and_the_trace_records_its_touches(tmp_path: Path, runner: str) -> None:
    features = _features(tmp_path, LIBRARY)
    result = RUNNERS[runner](features, tmp_path / "trace.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = _trace(tmp_path / "trace.jsonl")
    assert record["status"] == "passed"
    assert record["touches"] >= 1 and "file" in record["kinds"], record
    assert record["function"].startswith("steps/cluster.py:"), record
    assert record["location"].endswith("case.feature:3"), record


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_a_failed_scenario_reports_what_the_service_answered_and_the_log_tails(
    tmp_path: Path, runner: str
) -> None:
    features = _features(tmp_path, FAILING)
    result = RUNNERS[runner](features, tmp_path / "trace.jsonl")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "expected production version '9' of demo, the gateway says '1'" in output, output
    assert "log tail: gateway" in output and "log tail: worker-1" in output, output
    statuses = [r["status"] for r in _trace(tmp_path / "trace.jsonl")]
    assert statuses == ["passed", "passed", "failed"], statuses
