"""Feature files collected as modules of scenarios, checked before anything starts.

Each ``.feature`` file becomes a :class:`FeatureModule` whose items are its scenarios, named by their
titles (so ``-k`` and the JUnit report speak the feature's language), run by pytest-bdd. At collection:

* a malformed file is a collection error with ``file:line`` (:func:`harness.scenario_check.lint_feature`);
* every step of every selected scenario is matched against the step library; undefined or ambiguous steps
  are reported all at once, with snippets, and the run stops before a service starts;
* a scenario whose steps need a capability the target lacks is marked skipped, naming both.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.options import gherkin_enabled
from harness.pytest_plugin.reports import scenario_info
from harness.pytest_plugin.state import rel, run_state
from harness.scenario_check import (
    ScenarioStep,
    ambiguous_message,
    lint_feature,
    resolve_steps,
    skip_reason,
)
from harness.steps_registry import load_step_library

PROBLEMS = pytest.StashKey[list[str]]()  # an item's undefined / ambiguous steps, as messages
EXAMPLE_PARAM = "_pytest_bdd_example"


class FeatureModule(pytest.Module):
    """A ``.feature`` file collected as a module whose test functions are its scenarios."""

    def _getobj(self) -> types.ModuleType:
        from pytest_bdd import scenario
        from pytest_bdd.feature import get_features

        problems = lint_feature(self.path, rel(self.config, str(self.path)))
        if problems:
            raise self.CollectError("\n".join(problems))
        module = types.ModuleType(f"features.{self.path.stem}")
        module.__file__ = str(self.path)
        self._scenarios: list[tuple[str, Any]] = []
        for feature in get_features([str(self.path)]):
            for title, template in feature.scenarios.items():
                bound = scenario(feature.filename, title, features_base_dir=str(self.path.parent))
                module.__dict__[title] = bound(_no_body)
                self._scenarios.append((title, template))
        return module

    def collect(self) -> list[pytest.Item]:
        self.obj  # noqa: B018  (parses the file and fills self._scenarios)
        items: list[pytest.Item] = []
        for title, template in self._scenarios:
            for item in self._genfunctions(title, self.obj.__dict__[title]):
                _check(item, template)
                items.append(item)
        return items


def _no_body() -> None:
    """The scenario test's own body: everything happens in its steps."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".feature" and gherkin_enabled(parent.config):
        return FeatureModule.from_parent(parent, path=file_path)
    return None


def _check(item: pytest.Item, template: Any) -> None:
    """Resolve the item's steps: remember undefined/ambiguous ones, skip on a missing capability."""
    state = run_state(item.config)
    if state is None:
        return
    callspec = getattr(item, "callspec", None)
    context = callspec.params.get(EXAMPLE_PARAM, {}) if callspec is not None else {}
    rendered = template.render(context)
    location = rel(item.config, template.feature.filename)
    state.infos[item.nodeid] = scenario_info(template.feature, rendered, location)
    steps = [
        ScenarioStep(s.type, s.name, f"{location}:{s.line_number}", _table(s.datatable))
        for s in rendered.steps
    ]
    resolution = resolve_steps(steps, load_step_library())
    problems = [_undefined(step) for step in resolution.undefined]
    problems += [ambiguous_message(step, found) for step, found in resolution.ambiguous]
    problems += resolution.setup_problems()
    item.stash[PROBLEMS] = problems
    missing = resolution.missing(state.target.capabilities)
    if missing and not problems:
        item.add_marker(pytest.mark.skip(reason=skip_reason(state.target.name, missing)))
        return
    title = f"{Path(template.feature.filename).stem}: {rendered.name}"
    for key, reason in state.target.known_defects.items():
        if key in title:
            item.add_marker(
                pytest.mark.xfail(reason=f"known defect of {state.target.name}: {reason}", strict=True)
            )


def _table(datatable: Any) -> tuple[tuple[str, ...], ...] | None:
    return None if datatable is None else tuple(tuple(row) for row in datatable.raw())


def _undefined(step: ScenarioStep) -> str:
    from harness.snippets import undefined_step_message

    return undefined_step_message(step.keyword, step.text, step.location, load_step_library())


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only the selected scenarios count
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if run_state(config) is None:
        return
    problems: list[str] = []
    for item in items:
        for message in item.stash.get(PROBLEMS, []):
            if message not in problems:
                problems.append(message)
    if problems:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        text = "\n\n".join(problems)
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(text, red=True)
        pytest.exit(
            f"{len(problems)} undefined or ambiguous step(s) or unmet set-ups in the selected scenarios "
            "(above)",
            returncode=2,
        )
