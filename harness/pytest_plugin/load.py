"""Load in ``pytest --gherkin``: the load options handed to the steps (:mod:`harness.load.settings`), each
scenario's names handed to its World (run reports and baseline entries are named after them), and what a
scenario attached (its run reports) linked from the JUnit XML (``<property name="load report"
value="...html"/>``) and from the Cucumber JSON (the output of an ``after`` hook of the scenario).

Registered by :mod:`.session` when ``--gherkin`` is given (a plugin of its own: its hooks do not clash
with the package's).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.load import settings
from harness.pytest_plugin.world import WORLD_KEY
from harness.scenario_context import attachments, set_scenario

#: (feature file name, item name) -> what the scenario attached, for the Cucumber JSON
CUCUMBER = pytest.StashKey[dict[tuple[str, str], list[tuple[str, str]]]]()
HOOK_LOCATION = "servingbdd: scenario attachments"


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
    config.stash[CUCUMBER] = {}


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
        report.sections.append(("servingbdd attachments", "\n".join(f"{n}: {v}" for n, v in attached)))
        item.config.stash[CUCUMBER][(item.path.name, item.name)] = attached
    return report


@pytest.hookimpl(trylast=True)  # after pytest-bdd has written the file
def pytest_sessionfinish(session: pytest.Session) -> None:
    cucumber = getattr(session.config, "_bddcucumberjson", None)
    pending = session.config.stash.get(CUCUMBER, {})
    if cucumber is None or not pending:
        return
    path = Path(cucumber.logfile)
    try:
        features = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    add_attachments(features, pending)
    path.write_text(json.dumps(features), encoding="utf-8")


def add_attachments(
    features: list[dict[str, Any]], pending: dict[tuple[str, str], list[tuple[str, str]]]
) -> None:
    """Each scenario's attachments as the output of an ``after`` hook (how Cucumber reporters show a
    scenario's links and logs)."""
    for feature in features:
        name = Path(str(feature.get("uri", ""))).name
        for element in feature.get("elements", []):
            attached = pending.get((name, str(element.get("id"))))
            if attached:
                element.setdefault("after", []).append(
                    {
                        "match": {"location": HOOK_LOCATION},
                        "result": {"status": "passed", "duration": 0},
                        "output": [f"{n}: {v}" for n, v in attached],
                    }
                )
