"""A profile run from start to judgement: the API a step or the command line uses in one or two calls.

::

    session = ProfileSession.start(url, book, "peak", model="demo", workdir=..., watch=[Watched(...)])
    ...                                  # a step swaps, faults, rolls back meanwhile (world.marks)
    outcome = session.finish(environment="staging", baseline=BaselineFile.load(path), key="hot_swap/peak")
    outcome.write(reports_dir, windows=windows_from_marks(world.marks))   # HTML + Prometheus textfile
    outcome.assert_ok()                  # SLO met and no regression, or one message saying why not

``finish`` waits for the profile's schedule to end (or stops an open-ended run), stops the resource
sampler, judges the environment's SLO table and compares against the baseline when one is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.base import ServiceInfo
from harness.baseline import DEFAULT_MIN_INCREASE, BaselineFile, Comparison, Entry, compare
from harness.load.profiles import Profile, ProfileBook
from harness.load.runner import LoadRun
from harness.load.workers import WorkerSite
from harness.observations import Observation
from harness.report.html import RunReport, write_report
from harness.report.prometheus import push, run_registry, write_textfile
from harness.report.resources import ResourceSample, ResourceSampler, Watched
from harness.report.timeseries import Window
from harness.slo_check import SloVerdict, judge

#: Beyond the schedule's end, how long ``finish`` waits for Locust to stop by itself.
END_GRACE_S = 60.0


@dataclass
class Outcome:
    profile: Profile
    samples: list[Observation]
    resources: list[ResourceSample]
    labels: dict[str, str]
    started_at: float
    verdict: SloVerdict | None = None
    comparison: Comparison | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (self.verdict is None or self.verdict.passed) and not (
            self.comparison and self.comparison.regressed
        )

    def assert_ok(self) -> None:
        """AssertionError naming each failed SLO check and the regression, with their numbers."""
        problems = []
        if self.verdict is not None and not self.verdict.passed:
            problems.append(
                f"SLO {self.verdict.environment!r} not met over {self.verdict.requests} requests: "
                + "; ".join(c.message for c in self.verdict.failures)
            )
        if self.comparison is not None and self.comparison.regressed:
            problems.append(f"latency regressed against the baseline: {self.comparison}")
        if problems:
            where = f" (report: {self.paths['html']})" if "html" in self.paths else ""
            raise AssertionError(f"profile {self.profile.name!r}: " + " | ".join(problems) + where)

    @property
    def stem(self) -> str:
        return report_stem(self.labels, self.profile.name)

    def write(
        self, directory: str | Path, *, windows: Sequence[Window] = (), pushgateway: str | None = None
    ) -> dict[str, Path]:
        """The HTML report and the Prometheus textfile under ``directory`` (named after the labels)."""
        directory = Path(directory)
        stem = self.stem
        report = RunReport(
            title=f"load profile {self.profile.name!r}"
            + (f": {self.labels['scenario']}" if self.labels.get("scenario") else ""),
            observations=self.samples,
            windows=windows,
            resources=self.resources,
            labels=self.labels,
            verdict=self.verdict,
            comparison=self.comparison,
            schedule=self.profile.schedule,
            started_at=self.started_at,
        )
        self.paths["html"] = write_report(report, directory / f"{stem}.html")
        registry = run_registry(self.samples, self.labels, self.verdict)
        self.paths["prometheus"] = write_textfile(directory / f"{stem}.prom", registry)
        if pushgateway:
            push(pushgateway, registry, self.labels)
        return dict(self.paths)


def watch_services(services: Iterable[ServiceInfo], backend: str) -> list[Watched]:
    """What to sample for a cluster's running services: pids on ``local``, containers on ``docker``."""
    running = [s for s in services if s.running and s.ident]
    if backend == "docker":
        return [Watched(s.name, container=s.ident) for s in running]
    return [Watched(s.name, pid=int(s.ident)) for s in running]


def report_stem(labels: Mapping[str, str], profile: str) -> str:
    """The reports' file name without suffix: feature, scenario and profile from the labels."""
    named = (labels.get(k, "") for k in ("feature", "scenario", "profile"))
    return _slug("-".join(v for v in named if v) or profile)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "run"


class ProfileSession:
    """A running profile (Locust + the resource sampler)."""

    def __init__(
        self, profile: Profile, run: LoadRun, sampler: ResourceSampler, labels: Mapping[str, str]
    ) -> None:
        self.profile = profile
        self.load = run  # a LoadRun: what world.load holds, so the existing load steps judge it too
        self.sampler = sampler
        self.labels = dict(labels)

    @classmethod
    def start(
        cls,
        url: str,
        book: ProfileBook,
        name: str,
        *,
        model: str | None,
        workdir: str | Path,
        watch: Iterable[Watched] = (),
        load_workers: int = 0,
        site: WorkerSite | None = None,
        processes: int = 1,
        labels: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        infer_body: Mapping[str, Any] | None = None,
    ) -> ProfileSession:
        """Start the profile's load (and the resource sampler); see :meth:`Profile.load_profile` for
        ``headers`` and ``infer_body``; ``site``: where the ``load_workers`` run (default: processes)."""
        profile = book.profile(name)
        runner_profile = profile.load_profile(
            model, processes=processes, load_workers=load_workers, headers=headers, infer_body=infer_body
        )
        sampler = ResourceSampler(watch).start()
        try:
            run = LoadRun.start(url, runner_profile, Path(workdir), site)
        except BaseException:
            sampler.stop()
            raise
        all_labels = {"feature": "", "scenario": "", "target": url, "profile": name, **(labels or {})}
        return cls(profile, run, sampler, all_labels)

    def finish(
        self,
        *,
        environment: str | None = None,
        book: ProfileBook | None = None,
        baseline: BaselineFile | None = None,
        key: str | None = None,
        save_baseline: bool = False,
        stop_now: bool = False,
        min_increase: float = DEFAULT_MIN_INCREASE,
        min_increase_ms: float = 1.0,
        alpha: float = 0.01,
    ) -> Outcome:
        """Wait for the schedule's end (``stop_now``: stop at once), then judge.

        ``environment`` needs the ``book`` the profile came from (its SLO tables). With a ``baseline``:
        ``save_baseline`` records this run under ``key``; otherwise the run is compared with ``key``'s entry.
        """
        try:
            if not stop_now:
                self.load.wait(timeout=self.profile.duration_s + END_GRACE_S)
        finally:
            self.load.stop()
            resources = self.sampler.stop()
        samples = self.load.samples()
        # t = 0 of the report is the first request: Locust takes seconds to start on a busy machine, and
        # the profile's schedule (drawn under the throughput) counts from its first user, not from then
        started_at = samples[0].started if samples else self.load.started_at
        outcome = Outcome(self.profile, samples, resources, self.labels, started_at)
        if environment is not None:
            if book is None:
                raise ValueError("judging an environment's SLO needs the profile book (book=...)")
            outcome.verdict = judge(samples, book.slo_for(environment, self.profile.name))
        if baseline is not None:
            key = key or self.profile.name
            if save_baseline:
                baseline.record(key, Entry.of(samples, self.labels))
                baseline.save()
            else:
                current = [o.latency_s for o in samples if o.ok]
                outcome.comparison = compare(
                    key,
                    baseline.get(key),
                    current,
                    min_increase=min_increase,
                    min_increase_ms=min_increase_ms,
                    alpha=alpha,
                )
        return outcome
