"""Load in ``pytest --gherkin``: the load options handed to the steps (:mod:`harness.load.settings`), each
scenario's names handed to its World (run reports and baseline entries are named after them), and what a
scenario attached (its run reports) linked from the JUnit XML (``<property name="load report"
value="...html"/>``) and from the Cucumber JSON (the output of an ``after`` hook of the scenario).

Registered by :mod:`.session` when ``--gherkin`` is given (a plugin of its own: its hooks do not clash
with the package's).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.load import settings
from harness.pytest_plugin.reports import ATTACHMENTS_SECTION
from harness.pytest_plugin.world import WORLD_KEY
from harness.scenario_context import attachments, set_scenario


def pytest_configure(config: pytest.Config) -> None:
    try:
        settings.configure(
            load_workers=config.getoption("load_workers"),
            baseline=config.getoption("baseline"),
            save_baseline=config.getoption("save_baseline"),
            profiles=config.getoption("load_profiles"),
            reports=Path(config.invocation_params.dir) / "reports" / "load",
        )
    except ValueError as exc:
        pytest.exit(f"servingbdd: {exc}", returncode=2)


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    set_scenario(request.getfixturevalue("world"), feature.filename, scenario.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """The teardown report (what JUnit takes properties from) carries what the scenario attached: its
    World is closed by then, so reports written at its end are there too."""
    report = yield
    world = item.stash.get(WORLD_KEY, None)
    if report.when != "teardown" or world is None:
        return report
    attached = attachments(world)
    if attached:
        for pair in attached:
            if pair not in report.user_properties:
                report.user_properties.append(pair)
        # the Cucumber JSON writer (:mod:`.reports`) makes this section an ``after`` hook's output
        report.sections.append((ATTACHMENTS_SECTION, "\n".join(f"{n}: {v}" for n, v in attached)))
    return report
