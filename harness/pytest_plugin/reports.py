"""JUnit XML and Cucumber JSON reports in the feature's language, valid also after an interrupted run.

* JUnit (pytest's ``--junitxml``): test cases are named by the scenario titles (see :mod:`.collection`);
  the services' log tails of a failed scenario go into its ``<system-err>`` (the plugin turns pytest's
  ``junit_logging`` from ``no`` to ``system-err``).
* Cucumber JSON (``--cucumberjson``, which this module's writer takes over from pytest-bdd's): one element
  per scenario with each step's own status — passed, failed, undefined, or skipped for the steps after
  the one that failed —, the failure message with the step text and ``feature:line``, and the log tails
  as ``text/plain`` embeddings of the failed step; what a scenario attached (its load reports) as the
  output of an ``after`` hook of the scenario (how Cucumber reporters show a scenario's links).
* An interrupted run (Ctrl-C, SIGTERM) still writes both: the scenario that was running is reported as
  an error ("interrupted"), every scenario that had not started as skipped.
"""

from __future__ import annotations

import base64
import json
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from harness import cleanup
from harness.pytest_plugin.state import run_state

LOG_TAIL_SECTION = "Captured stderr log tail: "
INTERRUPTED = "interrupted: the run was stopped (KeyboardInterrupt or a signal) while this scenario ran"
NOT_RUN = "not run: the run was interrupted before this scenario started"


@dataclass(frozen=True)
class ScenarioInfo:
    """What a report needs to know of a collected scenario (kept from collection time, so that a
    scenario that never ran can still be reported)."""

    feature_keyword: str
    feature_name: str
    feature_uri: str
    feature_line: int
    feature_description: str
    feature_tags: tuple[str, ...]
    language: str
    keyword: str
    name: str
    line: int
    description: str
    tags: tuple[str, ...]
    steps: tuple[tuple[str, str, int], ...]  # keyword, text, line


INFO = pytest.StashKey[ScenarioInfo]()


def scenario_info(feature: Any, rendered: Any, uri: str) -> ScenarioInfo:
    """From pytest-bdd's parsed feature and rendered scenario (outline rows filled in)."""
    return ScenarioInfo(
        feature_keyword=feature.keyword,
        feature_name=feature.name or uri,
        feature_uri=uri,
        feature_line=feature.line_number,
        feature_description=feature.description or "",
        feature_tags=tuple(sorted(feature.tags)),
        language=feature.language,
        keyword=rendered.keyword,
        name=rendered.name,
        line=rendered.line_number,
        description=rendered.description or "",
        tags=tuple(sorted(rendered.tags)),
        steps=tuple((s.keyword.strip(), s.name, s.line_number) for s in rendered.steps),
    )


@dataclass
class Progress:
    """Which scenario runs now and which ended (to report an interrupted run)."""

    running: str | None = None
    finished: set[str] = field(default_factory=set)


PROGRESS = pytest.StashKey[Progress]()


def configure_reports(config: pytest.Config) -> None:
    """Log tails into JUnit's system-err; our Cucumber JSON writer instead of pytest-bdd's; SIGTERM (how
    CI stops a job) ends the run like Ctrl-C, so that the reports are written."""
    from _pytest.junitxml import xml_key

    _terminate_like_interrupt()
    xml = config.stash.get(xml_key, None)
    if xml is not None and xml.logging == "no":
        xml.logging = "system-err"
        xml.log_passing_tests = False  # only a failed scenario's (its log tails), not empty headers
    theirs = getattr(config, "_bddcucumberjson", None)
    if theirs is not None:
        config.pluginmanager.unregister(theirs)
        del config._bddcucumberjson  # type: ignore[attr-defined]
        config.pluginmanager.register(CucumberReport(config, theirs.logfile), "servingbdd-cucumberjson")


class ProgressTracker:
    """Registered with the plugin manager: follows which item runs."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        config.stash[PROGRESS] = Progress()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.config.stash[PROGRESS].running = nodeid

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        progress = self.config.stash[PROGRESS]
        progress.running = None
        progress.finished.add(nodeid)

    @pytest.hookimpl(tryfirst=True)  # before the JUnit and Cucumber writers write their files
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus != pytest.ExitCode.INTERRUPTED:
            return
        progress = self.config.stash[PROGRESS]
        for item in session.items:
            if item.nodeid == progress.running:
                _report(item, "call", "failed", INTERRUPTED)
                _report(item, "teardown", "passed", None)
            elif item.nodeid not in progress.finished:
                _report(item, "setup", "skipped", NOT_RUN)
                _report(item, "teardown", "passed", None)
            progress.finished.add(item.nodeid)
        progress.running = None


def _report(item: pytest.Item, when: str, outcome: str, text: str | None) -> None:
    """A report for a phase that never produced one, sent to every reporter (terminal, JUnit, Cucumber)."""
    path, line, _ = item.location
    longrepr: Any = None
    if outcome == "skipped":
        longrepr = (str(path), (line or 0) + 1, f"Skipped: {text}")
    elif outcome == "failed":
        longrepr = text
    report = pytest.TestReport(
        item.nodeid, item.location, dict.fromkeys(item.keywords, 1), outcome, longrepr, when, [], 0.0
    )
    report.servingbdd_interrupted = outcome == "failed"  # type: ignore[attr-defined]
    xml = _junit(item.config)
    add_error = getattr(xml.node_reporter(report), "_add_simple", None) if xml is not None else None
    if outcome == "failed" and add_error is not None:
        # JUnit: an interrupted scenario is an error (it did not fail a check), not a failure. pytest's
        # writer has no public way to say so; without that private method it is written as a failure.
        add_error("error", INTERRUPTED, text)
        others = item.config.pluginmanager.subset_hook_caller("pytest_runtest_logreport", [xml])
        others(report=report)
        return
    item.config.hook.pytest_runtest_logreport(report=report)


def _terminate_like_interrupt() -> None:
    """SIGTERM raises ``KeyboardInterrupt`` (after the registered cleanups, see :mod:`harness.cleanup`)
    unless someone else already handles it."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    cleanup.chain_signal(signal.SIGTERM, interrupt)


def _junit(config: pytest.Config) -> Any:
    from _pytest.junitxml import xml_key

    return config.stash.get(xml_key, None)


# -- Cucumber JSON ------------------------------------------------------------------------------------
#: the report section holding what a scenario attached, one "name: value" per line
ATTACHMENTS_SECTION = "servingbdd attachments"
ATTACHMENTS_HOOK = "servingbdd: scenario attachments"


def after_hook(lines: list[str]) -> dict[str, Any]:
    """An ``after`` hook of a scenario whose output is ``lines``."""
    return {
        "match": {"location": ATTACHMENTS_HOOK},
        "result": {"status": "passed", "duration": 0},
        "output": lines,
    }


class CucumberReport:
    """Cucumber JSON for the scenarios of the run (the format Cucumber's own JSON formatter writes)."""

    def __init__(self, config: pytest.Config, path: str) -> None:
        self.config = config
        self.path = Path(path)
        self.features: dict[str, dict[str, Any]] = {}
        self.elements: dict[str, dict[str, Any]] = {}  # node id -> its scenario's element

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = _info(self.config, report.nodeid)
        if info is None:
            return
        element = self.elements.get(report.nodeid)
        if report.when == "teardown" and element is not None:
            lines = [
                line
                for title, text in report.sections
                if title == ATTACHMENTS_SECTION
                for line in text.splitlines()
            ]
            if lines:
                element.setdefault("after", []).append(after_hook(lines))
        ran = report.when == "call"
        stopped_early = report.when == "setup" and not report.passed  # skipped or failed before any step
        if not (ran or stopped_early):
            return
        feature = self.features.setdefault(
            info.feature_uri,
            {
                "uri": info.feature_uri,
                "id": _slug(info.feature_name),
                "keyword": info.feature_keyword,
                "name": info.feature_name,
                "line": info.feature_line,
                "description": info.feature_description,
                "tags": [{"name": f"@{t}", "line": info.feature_line - 1} for t in info.feature_tags],
                "elements": [],
            },
        )
        self.elements[report.nodeid] = element = {
            "id": f"{_slug(info.feature_name)};{_slug(info.name)}",
            "keyword": info.keyword,
            "name": info.name,
            "line": info.line,
            "description": info.description,
            "type": "scenario",
            "tags": [{"name": f"@{t}", "line": info.line - 1} for t in info.tags],
            "steps": self._steps(info, report),
        }
        feature["elements"].append(element)

    def _steps(self, info: ScenarioInfo, report: pytest.TestReport) -> list[dict[str, Any]]:
        state = run_state(self.config)
        record = state.scenarios.get(report.nodeid) if state is not None else None
        statuses = dict(record.status) if record is not None and report.when == "call" else {}
        durations = dict(record.durations) if record is not None else {}
        interrupted = getattr(report, "servingbdd_interrupted", False)
        failed_somewhere = report.failed and not any(s in ("failed", "undefined") for s in statuses.values())
        steps = []
        blamed = False
        for keyword, text, line in info.steps:
            status = statuses.get(line)
            if status is None and (interrupted or failed_somewhere) and not blamed:
                status = "failed"  # the step that was running (interrupted) or failed outside a step hook
            status = status or "skipped"
            nanoseconds = math.floor(durations.get(line, 0.0) * 1e9)
            result: dict[str, Any] = {"status": status, "duration": nanoseconds}
            step: dict[str, Any] = {
                "keyword": f"{keyword} ",
                "name": text,
                "line": line,
                "match": {"location": (record.functions.get(line, "") if record is not None else "")},
                "result": result,
            }
            if status in ("failed", "undefined") and not blamed:
                blamed = True
                result["error_message"] = _message(report) if report.failed else ""
                embeddings = _log_tails(report)
                if embeddings:
                    step["embeddings"] = embeddings
            steps.append(step)
        if report.failed and not blamed and steps:  # failed after its last step (starting what it set up)
            steps[-1]["result"]["status"] = "failed"
            steps[-1]["result"]["error_message"] = _message(report)
            embeddings = _log_tails(report)
            if embeddings:
                steps[-1]["embeddings"] = embeddings
        return steps

    def pytest_sessionfinish(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(list(self.features.values()), indent=1), encoding="utf-8")
        os.replace(tmp, self.path)  # a reader never sees half a file

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", f"generated Cucumber JSON file: {self.path}")


def _info(config: pytest.Config, nodeid: str) -> ScenarioInfo | None:
    state = run_state(config)
    return state.infos.get(nodeid) if state is not None else None


def _message(report: pytest.TestReport) -> str:
    """The failure as the feature's reader needs it: the step text and feature:line, then what was wrong
    (the assertion's message, not pytest's traceback)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr) if report.longrepr is not None else "failed"


def _log_tails(report: pytest.TestReport) -> list[dict[str, str]]:
    return [
        {
            "name": title.removeprefix(LOG_TAIL_SECTION).split(" (", 1)[0],
            "mime_type": "text/plain",
            "data": base64.b64encode(text.split("\n", 1)[-1].encode("utf-8")).decode("ascii"),
        }
        for title, text in report.sections
        if title.startswith(LOG_TAIL_SECTION)
    ]


def _slug(text: str) -> str:
    return "-".join(text.lower().split())
