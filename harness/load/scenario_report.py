"""A scenario's load and its run report, written under the run's reports directory when the scenario ends.

A step that starts load hands its :class:`ProfileSession` to :func:`track` (a load with a fixed user
count and no end is wrapped by :func:`open_session`). The Then steps judge the run through
:meth:`ScenarioLoad.finish` and keep their SLO verdict and baseline comparison on its :class:`Outcome`.
When the scenario ends, whatever happened: the run is stopped if it still runs, its report (one HTML
file and a Prometheus textfile; the World's marked windows such as a swap shaded on every chart) is
written, and its path attached to the runner's reports (:mod:`harness.scenario_context`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.load import schedule as shapes
from harness.load.profiles import Profile
from harness.load.runner import LoadRun
from harness.load.session import Outcome, ProfileSession, report_stem, watch_services
from harness.load.settings import current
from harness.report.resources import ResourceSampler, Watched
from harness.report.timeseries import windows_from_marks
from harness.scenario_context import attach, scenario_of
from harness.world import World

log = logging.getLogger(__name__)


@dataclass
class ScenarioLoad:
    session: ProfileSession
    open_ended: bool = False  # a load that runs until stopped (no schedule end to wait for)
    outcome: Outcome | None = None

    def finish(self) -> Outcome:
        """The finished run (waits for the profile's end the first time; idempotent)."""
        if self.outcome is None:
            self.outcome = self.session.finish(stop_now=self.open_ended)
        return self.outcome

    @property
    def report_path(self) -> Path:
        """Where the HTML report is written when the scenario ends."""
        return current().reports / f"{report_stem(self.session.labels, self.session.profile.name)}.html"

    def write(self, world: World) -> Path:
        outcome = self.finish()
        if self.open_ended:  # the plan drawn under the throughput: its users for as long as it ran
            last = outcome.samples[-1].ended if outcome.samples else time.time()
            ran_s = max(1.0, last - outcome.started_at)
            users = outcome.profile.schedule.peak_users
            outcome.profile = replace(outcome.profile, schedule=shapes.sustained(users, ran_s))
        paths = outcome.write(current().reports, windows=windows_from_marks(world.marks))
        for kind, path in sorted(paths.items()):
            attach(world, f"load {kind}" if kind != "html" else "load report", _shown(path))
        return paths["html"]


def _shown(path: Path) -> str:
    """Relative to the working directory when below it (CI keeps ``reports/`` as an artifact)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def track(world: World, session: ProfileSession, *, open_ended: bool = False) -> ScenarioLoad:
    """Keep ``session`` as one of the scenario's loads; its report is written when the scenario ends."""
    load = ScenarioLoad(session, open_ended)
    world.defer(f"write the run report of the {session.profile.name!r} load", lambda: _write(world, load))
    return load


def _write(world: World, load: ScenarioLoad) -> None:
    try:
        path = load.write(world)
    except Exception:
        load.session.load.stop()  # never leave the load running because its report failed
        raise
    log.info("load report: %s", path)


def watched(world: World) -> list[Watched]:
    """The services whose CPU and memory go beside the latency: the backend's (none for a deployment
    the harness did not start)."""
    backend = world.backend
    if backend is None:
        return []
    return watch_services(backend.services(), backend.name)


def labels(world: World, profile: str) -> dict[str, str]:
    """The run's labels (report title, Prometheus labels, baseline entry): feature, scenario, target,
    profile."""
    info = scenario_of(world)
    return {"feature": info.feature, "scenario": info.title, "target": world.target.name, "profile": profile}


def open_session(world: World, run: LoadRun, name: str) -> ProfileSession:
    """A load started with a fixed user count and no end (``N users send ... continuously``) as a
    session, so that it is reported like a profile: its services' resources are sampled from now on."""
    profile = Profile(
        name=name,
        shape="sustained",
        schedule=shapes.sustained(run.profile.users, 1.0),  # replaced by how long it ran, at the end
        endpoints=run.profile.calls(),
        timeout_s=run.profile.timeout_s,
        think_s=run.profile.think_s,
    )
    sampler = ResourceSampler(watched(world)).start()
    return ProfileSession(profile, run, sampler, labels(world, name))
