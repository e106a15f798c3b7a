"""The reports CI publishes, from real runs: JUnit XML and Cucumber JSON, validated against the schemas'
essentials (``schemas/``), in the feature's language, with the services' log tails; also when the run
is interrupted in the middle of a scenario."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from test_runners import _env, _features

from harness.waiting import poll

SCHEMAS = Path(__file__).resolve().parent / "schemas"

FAILING = """\
Feature: Reports speak the feature's language
  Scenario: The production version is not what the feature expects
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1"
    Then the production version of demo is "9"
    And 5 inference requests for demo are all answered by version "1"

  Scenario: Artifacts only
    Given the demo model with versions "1"
"""

INTERRUPTED = """\
Feature: An interrupted run
  Scenario: First builds artifacts
    Given the demo model with versions "1"

  Scenario: Second runs long
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1"
    Then the registry stays unchanged for 100 heartbeat intervals

  Scenario: Third never starts
    Given the demo model with versions "1"
"""


def _argv(features: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:locust",
        "--gherkin", "--backend", "local", "--features", str(features),
        "--junitxml", str(out / "junit.xml"), "--cucumberjson", str(out / "cucumber.json"),
        "--step-trace", str(out / "trace.jsonl"),
    ]  # fmt: skip


def _valid(out: Path) -> tuple[ET.Element, list[dict]]:
    """Both reports, each checked against its schema first."""
    xmlschema.XMLSchema(SCHEMAS / "junit.xsd").validate(out / "junit.xml")
    schema = json.loads((SCHEMAS / "cucumber.schema.json").read_text())
    cucumber = json.loads((out / "cucumber.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(cucumber)
    return ET.parse(out / "junit.xml").getroot(), cucumber


def _steps(cucumber: list[dict], title: str) -> list[dict]:
    (element,) = [e for f in cucumber for e in f["elements"] if e["name"] == title]
    return element["steps"]


def _cases(junit: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in junit.iter("testcase")}


def test_a_failed_scenario_is_reported_by_title_step_and_line_with_the_log_tails(tmp_path: Path) -> None:
    features = _features(tmp_path, FAILING)
    result = subprocess.run(
        _argv(features, tmp_path), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stdout + result.stderr
    junit, cucumber = _valid(tmp_path)

    title = "The production version is not what the feature expects"
    cases = _cases(junit)
    assert sorted(cases) == ["Artifacts only", title], sorted(cases)  # JUnit names are the titles
    failure = cases[title].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert 'Then the production version of demo is "9"' in message and "case.feature:5" in message, message
    system_err = "".join(e.text or "" for e in cases[title].iter("system-err"))
    assert "log tail: gateway" in system_err and "log tail: worker-1" in system_err, system_err
    assert "gateway listening" in system_err, system_err

    steps = _steps(cucumber, title)
    assert [s["result"]["status"] for s in steps] == ["passed", "passed", "failed", "skipped"], steps
    failed = steps[2]
    assert 'Then the production version of demo is "9"' in failed["result"]["error_message"]
    assert "case.feature:5" in failed["result"]["error_message"]
    assert "the gateway says '1'" in failed["result"]["error_message"]
    tails = {e["name"]: base64.b64decode(e["data"]).decode() for e in failed["embeddings"]}
    assert set(tails) == {"gateway", "worker-1"}, sorted(tails)
    assert "gateway listening" in tails["gateway"], tails["gateway"][:500]
    assert [s["result"]["status"] for s in _steps(cucumber, "Artifacts only")] == ["passed"]


def test_an_interrupted_run_writes_valid_reports_error_and_skipped(tmp_path: Path) -> None:
    features = _features(tmp_path, INTERRUPTED)
    trace = tmp_path / "trace.jsonl"
    # Ctrl-C as a terminal sends it: SIGINT to the run, in the middle of the second scenario's long step
    proc = subprocess.Popen(
        _argv(features, tmp_path), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        poll(  # until scenario 2 is under way (or the run ended: asserted below)
            lambda: trace.exists() and len(trace.read_text().splitlines()) >= 2,
            lambda under_way: under_way or proc.poll() is not None,
            timeout=180,
            interval=0.2,
        )
        time.sleep(3.0)  # into the cluster start or the long step
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, output  # pytest's "interrupted"
    junit, cucumber = _valid(tmp_path)
    cases = _cases(junit)
    assert sorted(cases) == ["First builds artifacts", "Second runs long", "Third never starts"], output
    assert cases["First builds artifacts"].find("failure") is None
    error = cases["Second runs long"].find("error")
    assert error is not None and "interrupted" in error.get("message", ""), ET.tostring(
        cases["Second runs long"]
    )
    skipped = cases["Third never starts"].find("skipped")
    assert skipped is not None and "interrupted" in skipped.get("message", ""), output

    second = [s["result"]["status"] for s in _steps(cucumber, "Second runs long")]
    assert second[0] == "passed" and "failed" in second, second
    assert all(s == "skipped" for s in second[second.index("failed") + 1 :]), second
    assert [s["result"]["status"] for s in _steps(cucumber, "Third never starts")] == ["skipped"]


@pytest.mark.parametrize("schema", ["junit.xsd", "cucumber.schema.json"])
def test_the_schemas_refuse_what_they_must(tmp_path: Path, schema: str) -> None:
    """The schemas are not vacuous: a report missing what CI needs is refused."""
    if schema == "junit.xsd":
        bad = tmp_path / "bad.xml"
        bad.write_text(
            '<testsuites><testsuite name="x"><testcase name="t" classname="c"/></testsuite></testsuites>'
        )
        assert not xmlschema.XMLSchema(SCHEMAS / schema).is_valid(bad)  # no counts, no time
        return
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / schema).read_text()))
    step = {"keyword": "Given ", "name": "x", "line": 3, "result": {"status": "broken"}}
    feature = {"uri": "a.feature", "id": "a", "keyword": "Feature", "name": "a", "line": 1}
    feature["elements"] = [
        {"keyword": "Scenario", "name": "s", "line": 2, "type": "scenario", "steps": [step]}
    ]
    assert not validator.is_valid([feature])
