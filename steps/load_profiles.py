"""Steps that run a load profile (``fixtures/load_profiles.toml``, or ``--load-profiles FILE``) against a
model and judge the run from its raw samples: an environment's SLO table, the answers' outputs, and the
latency against a baseline (taken in the scenario, or recorded in ``--baseline FILE``).

They need only V2 inference: the infer endpoints of a profile send the model's own request (its target's
model spec) with the target's headers, so a profile runs against any target. Every run's HTML report is
written under ``reports/load/`` when the scenario ends and linked from the runner's reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from harness.baseline import MIN_SAMPLES, BaselineFile, Comparison, Entry, compare
from harness.load.scenario_report import ScenarioLoad, labels, track, watched
from harness.load.session import Outcome, ProfileSession
from harness.load.settings import current
from harness.observations import Observation
from harness.scenario_context import attach, scenario_of
from harness.slo_check import judge
from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import assert_computed

#: A regression persists: the run is cut into this many stretches of equal duration and each must regress
#: too. A burst of contention on a shared machine (seconds: measured 9.7 -> 21.5 ms and 11.7 -> 36.7 ms
#: medians between back-to-back runs of one unchanged cluster) inflates a stretch, not the whole run.
STRETCHES = 3
#: Samples a profile started by a Given must have produced before the next step acts under it.
WARM_UP_SAMPLES = 20
#: The one input every infer request of a profile sends (its answer per version is computed once).
LOAD_SEED = 4242

RUN = pytest.StashKey[ScenarioLoad]()  # the scenario's profile run (the one the Then steps judge)
BASELINE = pytest.StashKey[Entry]()  # a baseline taken in the scenario


def _start(world: World, profile: str, model: str, *, label: str | None = None) -> ProfileSession:
    settings = current()
    return ProfileSession.start(  # an unknown profile fails here, naming the known ones
        world.target.inference_url,
        settings.book(),
        profile,
        model=model,
        workdir=world.workdir / "load",
        watch=watched(world),
        load_workers=settings.load_workers,
        site=world.load_site() if settings.load_workers else None,
        labels=labels(world, label or profile),
        headers=world.target.headers(),
        infer_body=world.model(model).request(1, seed=LOAD_SEED),
    )


def _start_run(world: World, profile: str, model: str) -> ScenarioLoad:
    previous = world.load
    assert previous is None or not previous.running, "a load is still running in this scenario"
    session = _start(world, profile, model)
    run = track(world, session)
    world.stash[RUN] = run
    world.load = session.load  # the "during the <window> ..." steps judge the same samples
    world.mark("load_started")
    return run


@given(
    'the "{profile}" load profile runs against {model:w}',
    example='Given the "spike" load profile runs against demo',
)
def profile_running(world: World, profile: str, model: str) -> None:
    """Start the profile's load (Locust in a subprocess) against the model and return once it answers,
    so that the next steps (a swap, a fault) act under it; the Then steps wait for its end."""
    run = _start_run(world, profile, model)
    run.session.load.wait_for_samples(WARM_UP_SAMPLES, timeout=60.0)


@when(
    'the "{profile}" load profile runs against {model:w}',
    example='When the "sustained" load profile runs against demo',
)
def profile_runs(world: World, profile: str, model: str) -> None:
    """Run the profile's load against the model from start to end (its shape, endpoints and timeouts
    from the profile file); the services' CPU and memory are sampled beside it."""
    run = _start_run(world, profile, model)
    outcome = run.finish()
    assert outcome.samples, f"the {profile!r} profile sent no request (log: {run.session.load.log_path})"


def _outcome(world: World) -> tuple[ScenarioLoad, Outcome]:
    """The scenario's finished run, its samples read back from the files the load wrote."""
    run = world.stash.get(RUN, None)
    assert run is not None, (
        "no load profile ran in this scenario (missing a step like "
        "'When the \"sustained\" load profile runs against demo'?)"
    )
    outcome = run.finish()
    outcome.samples = run.session.load.samples()
    return run, outcome


def _judge_answers(world: World, outcome: Outcome, what: str) -> None:
    """The run's answers are judged on what they computed: a fast wrong answer meets no SLO."""
    assert_computed(world, outcome.samples, what)


@then(
    "the {environment:w} SLO of the run is met",
    example="Then the staging SLO of the run is met",
)
def slo_met(world: World, environment: str) -> None:
    """The run's successful latencies meet the environment's p50/p95/p99 bounds, each judged only over at
    least its minimum sample count (fewer: not met), its error rate (not 2xx, no answer included) is
    within the bound, and every answer was computed by the version it names. The bounds: ``[slo.<env>]``
    of the profile file, with the profile's own overrides."""
    run, outcome = _outcome(world)
    verdict = judge(outcome.samples, current().book().slo_for(environment, outcome.profile.name))
    outcome.verdict = verdict
    print(verdict)
    if not verdict.passed:  # raised, not asserted: pytest would append the verdict's repr
        raise AssertionError(
            f"the {outcome.profile.name!r} load profile did not meet the {environment} SLO over "
            f"{verdict.requests} requests: {'; '.join(c.message for c in verdict.failures)} "
            f"(report: {run.report_path})"
        )
    _judge_answers(world, outcome, f"during the {outcome.profile.name!r} load profile")


@given(
    'a latency baseline of {model:w} is taken over {runs:Runs} of the "{profile}" load profile',
    example='Given a latency baseline of demo is taken over 2 runs of the "latency_probe" load profile',
)
def baseline_runs(world: World, model: str, runs: int, profile: str) -> None:
    """Run the profile ``runs`` times, one after the other, and keep their successful latencies as this
    scenario's baseline (each run's answers judged on what they computed, and each needs enough answers to
    compare with). A later run regresses only when it beats the *slowest* of them by the stated effect:
    on a shared machine one calm run makes a bar that ordinary noise clears."""
    assert runs >= 1, f"a baseline needs at least one run (got {runs})"
    entry: Entry | None = None
    for index in range(1, runs + 1):
        session = _start(world, profile, model, label=f"{profile} baseline {index}")
        world.defer(f"stop the baseline run {index}", session.load.stop)
        outcome = session.finish()
        _judge_answers(world, outcome, f"during the {profile!r} baseline run {index}")
        run = Entry.of(outcome.samples, session.labels)
        _enough(run, f"the {profile!r} baseline run {index}")
        entry = run if entry is None else entry.plus(run)
    assert entry is not None
    world.stash[BASELINE] = entry
    medians = ", ".join(f"{m * 1000:.1f} ms" for m in entry.run_medians_s)
    print(
        f"baseline of {model} over {runs} run(s) of {profile!r}: {len(entry.latencies_s)} successful answers,"
        f" run medians {medians}; machine load average {_load_average()}"
    )


def _load_average() -> str:
    """The test machine's 1-minute load average and core count: what a latency comparison on a shared
    machine must be read against."""
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _enough(entry: Entry, what: str) -> None:
    n = len(entry.latencies_s)
    assert n >= MIN_SAMPLES, f"{what} has {n} successful answers; {MIN_SAMPLES} are needed to compare"


@then(
    "latency has not regressed against the baseline",
    example="Then latency has not regressed against the baseline",
)
def not_regressed(world: World) -> None:
    """The run is no latency regression against the baseline taken in the scenario and against the
    scenario's entry in ``--baseline FILE`` (each one given): a regression is a median above the slowest
    baseline run's by the stated effect (+50 %, at least 1 ms) that a one-sided Mann-Whitney U test also
    finds significant (p < 0.01), over the whole run and in each third of it (a regression persists; a
    burst of contention on a shared machine does not). With ``--save-baseline`` the run is added to the
    file's entry instead of compared with it. The run's answers are judged on what they computed."""
    run, outcome = _outcome(world)
    _judge_answers(world, outcome, f"during the {outcome.profile.name!r} load profile")
    answers = [o for o in outcome.samples if o.ok]
    settings = current()
    key = scenario_of(world).key
    comparisons: list[tuple[str, Judged]] = []
    taken = world.stash.get(BASELINE, None)
    if taken is not None:
        comparisons.append(("the baseline taken in this scenario", _judged(key, taken, answers)))
    refused: list[str] = []
    if settings.baseline is not None:
        file = BaselineFile.load(settings.baseline)
        if settings.save_baseline:
            before = file.entries.get(key)
            loads = " ".join([*_loads(before), f"{os.getloadavg()[0]:.2f}"])
            entry = Entry.of(outcome.samples, {**outcome.labels, LOADS_LABEL: loads})
            _enough(entry, "the run")
            recorded = file.record(key, entry)
            file.save()
            attach(world, "baseline recorded", f"{file.path} [{key}]")
            print(f"baseline recorded: {file.path} [{key}], {len(recorded.run_medians_s)} run(s)")
        else:
            assert key in file.entries, (
                f"no baseline for {key!r} in {file.path} (it has {sorted(file.entries)}): "
                "record one with --baseline FILE --save-baseline"
            )
            reason = _not_comparable(file.entries[key])
            if reason is None:
                comparisons.append((f"the baseline in {file.path}", _judged(key, file.entries[key], answers)))
            else:
                refused.append(f"against the baseline in {file.path}: not comparable: {reason}")
    assert comparisons or refused or settings.save_baseline, (
        "no baseline to compare with: take one in the scenario (a step like 'Given a latency baseline of "
        'demo is taken with the "latency" load profile\') or run with --baseline FILE'
    )
    if comparisons:
        outcome.comparison = next((j for _, j in comparisons if j.regressed), comparisons[-1][1]).whole
    print(f"machine load average during the run: {_load_average()}")
    for what, judged in comparisons:
        print(f"against {what}: {judged}")
    for reason in refused:
        print(reason)
    regressed = [f"latency regressed against {what}: {j}" for what, j in comparisons if j.regressed]
    if regressed or refused:
        raise AssertionError(
            " | ".join([*regressed, *refused])
            + f" (machine load average {_load_average()}; report: {run.report_path})"
        )


#: The label of a recorded baseline holding the test machine's 1-minute load average at each of its runs.
LOADS_LABEL = "load_averages"


def _loads(entry: Entry | None) -> list[str]:
    return entry.labels.get(LOADS_LABEL, "").split() if entry is not None else []


def _not_comparable(entry: Entry) -> str | None:
    """Why latencies measured now cannot be compared with a recorded baseline, if they cannot: the test
    machine is far busier than when any of its runs was recorded (its 1-minute load average above twice,
    and above the core count plus, the busiest recorded). Latency on a shared machine follows its load
    (measured here: medians of one unchanged cluster from 21 to 129 ms as the load went from 9 to 24), and
    no effect size tells a slower build from a busier machine: like a percentile over too few samples,
    such a comparison is refused, not guessed."""
    recorded = [float(v) for v in _loads(entry)]
    if not recorded:
        return None  # recorded without the load (another tool): compared as it is
    now, cores, busiest = os.getloadavg()[0], os.cpu_count() or 1, max(recorded)
    limit = max(2 * busiest, busiest + cores)
    if now <= limit:
        return None
    return (
        f"the machine's load average is {now:.1f} on {cores} cores now, at most {busiest:.1f} when the "
        f"baseline's runs were recorded (comparable up to {limit:.1f}); run again on a quieter machine"
    )


@dataclass(frozen=True)
class Judged:
    """A run against a baseline, as a whole and in :data:`STRETCHES` stretches of equal duration."""

    whole: Comparison
    parts: tuple[Comparison | None, ...]  # None: too few answers in that stretch to compare

    @property
    def regressed(self) -> bool:
        """The whole run regressed, and so did every stretch (one with too few answers cannot refute it)."""
        return self.whole.regressed and all(p is None or p.regressed for p in self.parts)

    def __str__(self) -> str:
        parts = ", ".join(
            "too few answers"
            if p is None
            else f"{p.increase:+.0%} p={p.p_value:.2g} {'REGRESSION' if p.regressed else 'no regression'}"
            for p in self.parts
        )
        verdict = "REGRESSION" if self.regressed else "no regression"
        return f"{verdict}; the run's {len(self.parts)} stretches: {parts}; whole run: {self.whole}"


def _judged(key: str, baseline: Entry, answers: list[Observation]) -> Judged:
    try:
        whole = compare(key, baseline, [o.latency_s for o in answers])
    except ValueError as exc:  # too few samples on a side: no verdict is no pass
        raise AssertionError(str(exc)) from None
    start, end = answers[0].started, answers[-1].started
    width = (end - start) / STRETCHES or 1.0
    stretches: list[list[float]] = [[] for _ in range(STRETCHES)]
    for o in answers:
        stretches[min(STRETCHES - 1, int((o.started - start) / width))].append(o.latency_s)
    parts = []
    for latencies in stretches:
        try:
            parts.append(compare(key, baseline, latencies))
        except ValueError:
            parts.append(None)
    return Judged(whole, tuple(parts))
