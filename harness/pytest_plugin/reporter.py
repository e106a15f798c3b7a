"""The Gherkin terminal output: each scenario printed as Gherkin with a mark per step, then its outcome."""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

from harness.pytest_plugin.state import run_state

# -- Gherkin terminal output ------------------------------------------------------------------------
_MARKS = {
    "passed": ("✓", {"green": True}),
    "failed": ("✗", {"red": True}),
    "undefined": ("?", {"yellow": True}),
}
_SKIPPED = ("-", {"yellow": True})


def use_gherkin_reporter(config: pytest.Config) -> None:
    current = config.pluginmanager.getplugin("terminalreporter")
    if current is None or current.__class__ is not TerminalReporter:
        return  # another reporter (xdist, a custom one): keep it, the scenarios still run
    config.pluginmanager.unregister(current)
    config.pluginmanager.register(GherkinReporter(config), "terminalreporter")


class GherkinReporter(TerminalReporter):
    """Prints each scenario as Gherkin with a mark per step, then the outcome (other tests as usual)."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self._show_progress_info = False  # the scenario blocks replace the per-file progress line
        self._last_feature: str | None = None

    def write_fspath_result(self, nodeid: str, res: Any, **markup: bool) -> None:
        if ".feature" not in nodeid.split("::", 1)[0]:  # scenario blocks name their feature themselves
            super().write_fspath_result(nodeid, res, **markup)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = run_state(self.config)
        record = state.scenarios.get(report.nodeid) if state else None
        if record is None and report.skipped and report.when == "setup" and ".feature::" in report.nodeid:
            return self._skipped_at_setup(report)
        if record is None or report.when != "call":
            return super().pytest_runtest_logreport(report)
        from pytest_bdd.reporting import test_report_context_registry

        context = test_report_context_registry.get(report)
        scenario = context.scenario if context else {}
        feature = scenario.get("feature", {})
        self.ensure_newline()
        if feature.get("name") != self._last_feature:
            self._tw.write(
                f"\n{feature.get('keyword', 'Feature')}: {feature.get('name', '')}\n", blue=True, bold=True
            )
            self._last_feature = feature.get("name")
        outcome_markup = {"green": True} if report.passed else {"red": True}
        title = scenario.get("name", report.nodeid)
        self._tw.write(f"    {scenario.get('keyword', 'Scenario')}: {title}", **outcome_markup)
        if "[" in report.nodeid:
            self._tw.write(f"  [{report.nodeid.rsplit('[', 1)[1]}", **outcome_markup)
        self._tw.write("\n")
        for keyword, text, line in record.steps:
            mark, markup = _MARKS.get(record.status.get(line, ""), _SKIPPED)
            self._tw.write(f"      {mark} {keyword} {text}\n", **markup)
        category, _, word = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        word = word[0] if isinstance(word, tuple) else word
        reason = f": {report.wasxfail}" if hasattr(report, "wasxfail") else ""
        self._tw.write(f"    {word} in {report.duration:.1f} s{reason}\n", **outcome_markup)
        self.stats.setdefault(category, []).append(report)
        return None

    def _skipped_at_setup(self, report: pytest.TestReport) -> None:
        """A scenario skipped before it ran (a capability its target lacks): its title and the reason."""
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        title = report.nodeid.split("::", 1)[1]
        self.ensure_newline()
        self._tw.write(f"    Scenario: {title}\n      SKIPPED: {reason}\n", yellow=True)
        self.stats.setdefault("skipped", []).append(report)
