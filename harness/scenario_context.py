"""What the runner tells a scenario's World about the scenario, and what the scenario hands back to the
runner's reports.

* :class:`ScenarioInfo` (the feature file and the scenario's title, examples filled in): names a run
  report and keys a latency baseline. The runner adapters put it in ``world.stash`` before the first
  step (pytest-bdd: ``pytest_bdd_before_scenario``; behave: ``before_scenario``).
* attachments: ``(name, value)`` pairs a step or a teardown action produced, e.g. ``("load report",
  "reports/load/x.html")``. pytest writes them as JUnit ``<property>`` elements and as output of an
  ``after`` hook in the Cucumber JSON; behave prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.world import World

SCENARIO = pytest.StashKey["ScenarioInfo"]()
ATTACHMENTS = pytest.StashKey[list[tuple[str, str]]]()


@dataclass(frozen=True)
class ScenarioInfo:
    feature: str  # the feature file's stem, e.g. "hot_swap"
    title: str  # the scenario's title, an outline's placeholders filled in

    @property
    def key(self) -> str:
        """``feature/title``: the scenario's latency baseline entry."""
        return f"{self.feature}/{self.title}"

    @classmethod
    def of(cls, feature_file: str | Path, title: str) -> ScenarioInfo:
        return cls(Path(feature_file).stem, title.strip())


def set_scenario(world: World, feature_file: str | Path, title: str) -> None:
    world.stash[SCENARIO] = ScenarioInfo.of(feature_file, title)


def scenario_of(world: World) -> ScenarioInfo:
    """The scenario the World runs (a World made outside a runner: ``adhoc/<workdir name>``)."""
    info = world.stash.get(SCENARIO, None)
    return info if info is not None else ScenarioInfo("adhoc", world.workdir.parent.name)


def attach(world: World, name: str, value: str | Path) -> None:
    """Hand ``name = value`` to the runner's reports (once per pair)."""
    items = world.stash.setdefault(ATTACHMENTS, [])
    if (name, str(value)) not in items:
        items.append((name, str(value)))


def attachments(world: World) -> list[tuple[str, str]]:
    return list(world.stash.get(ATTACHMENTS, []))
