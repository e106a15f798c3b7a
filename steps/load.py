"""Steps that run Locust against the gateway and judge the recorded samples (SLOs, errors, versions)."""

from __future__ import annotations

from harness.load.runner import LoadProfile, LoadRun
from harness.load.scenario_report import open_session, track
from harness.load.settings import current
from harness.slo import InsufficientSamples, percentile
from harness.steps_registry import given, then
from harness.world import World
from steps._support import assert_computed, describe, inference_in, window_bounds

#: Samples the load must have produced before a Given declares it "running".
WARM_UP_SAMPLES = 50

#: Each simulated user's pause between its requests. Users think between requests; 50 users firing
#: back to back would saturate a 2-core test machine and test the machine rather than the swap.
USER_THINK_S = 0.1

#: The load sends one fixed input (its answer per version is computed once to judge every sample).
LOAD_SEED = 4242


@given(
    "{users:d} users send inference requests for {model:w} continuously",
    example="Given 50 users send inference requests for demo continuously",
)
def start_load(world: World, users: int, model: str) -> None:
    """Start Locust (a subprocess): ``users`` users call infer on the gateway until the scenario ends,
    each pausing 0.1 s between its requests."""
    assert world.load is None, "a load was already started in this scenario"
    load_workers = current().load_workers  # --load-workers N: a master and N workers, as for a profile
    profile = LoadProfile(
        load_workers=load_workers,
        users=users,
        spawn_rate=None,
        model=model,
        think_s=USER_THINK_S,
        body=world.model(model).request(1, seed=LOAD_SEED),
        headers=world.target.headers(),
    )
    site = world.load_site() if load_workers else None
    run = LoadRun.start(world.target.inference_url, profile, world.workdir / "load", site)
    world.load = run
    world.defer("stop the load", run.stop)
    track(world, open_session(world, run, f"{users} users"), open_ended=True)  # reported at the end
    world.mark("load_started")
    run.wait_for_samples(WARM_UP_SAMPLES, timeout=60.0)


def _window(world: World, window: str) -> tuple[float | None, float | None]:
    if window == "load":  # "since the load started": everything the load saw
        return world.marks.get("load_started"), None
    return window_bounds(world, window)


@then(
    "during the {window:w} no request failed with a server error or a lost connection",
    example="Then during the swap no request failed with a server error or a lost connection",
)
def no_failures_in_window(world: World, window: str) -> None:
    """No inference answer overlapping the window was a 5xx or no answer at all (connection error/timeout)."""
    start, end = _window(world, window)
    answers = inference_in(world, start, end)
    assert answers, f"expected inference requests during the {window}, none were recorded"
    failed = [o for o in answers if o.failed]
    assert not failed, (
        f"expected no 5xx and no connection errors during the {window}; "
        f"{len(failed)} of {len(answers)} requests failed: {describe(failed)}"
    )


@then(
    "during the {window:w} every request was answered successfully",
    example="Then during the swap every request was answered successfully",
)
def all_ok_in_window(world: World, window: str) -> None:
    """Every inference request overlapping the window got a 2xx answer (no 4xx either: the body was valid),
    computed by the version it names (its outputs are what that version's model computes)."""
    start, end = _window(world, window)
    answers = inference_in(world, start, end)
    assert answers, f"expected inference requests during the {window}, none were recorded"
    failed = [o for o in answers if not o.ok]
    assert not failed, (
        f"expected every request during the {window} to succeed; "
        f"{len(failed)} of {len(answers)} did not: {describe(failed)}"
    )
    assert_computed(world, answers, f"during the {window}")


@then(
    "during the {window:w} the p99 latency is below {ms:d} ms over at least {count:d} requests",
    example="Then during the swap the p99 latency is below 1500 ms over at least 100 requests",
)
def p99_in_window(world: World, window: str, ms: int, count: int) -> None:
    """p99 of the successful inference latencies overlapping the window, from raw samples (never too few)."""
    start, end = _window(world, window)
    latencies = [o.latency_s for o in inference_in(world, start, end) if o.ok]
    try:
        p99 = percentile(latencies, 0.99, min_samples=count)
    except InsufficientSamples as exc:
        raise AssertionError(
            f"expected at least {count} successful requests during the {window} to judge p99, "
            f"got {len(latencies)}: {exc}"
        ) from None
    assert p99 * 1000 < ms, (
        f"expected p99 below {ms} ms during the {window}, "
        f"measured {p99 * 1000:.1f} ms over {len(latencies)} requests"
    )


@then(
    "during the {window:w} versions {versions:Versions} answered",
    example='Then during the swap versions "1" and "2" answered',
)
def versions_in_window(world: World, window: str, versions: tuple[str, ...]) -> None:
    """Each of ``versions`` answered at least one successful inference request overlapping the window, and
    every answer's outputs are what the version it names computes."""
    start, end = _window(world, window)
    answers = [o for o in inference_in(world, start, end) if o.ok]
    seen = sorted({str(o.model_version) for o in answers})
    missing = [v for v in versions if v not in seen]
    assert not missing, (
        f"expected versions {list(versions)} to answer during the {window}; "
        f"{len(answers)} successful answers came from versions {seen}"
    )
    assert_computed(world, answers, f"during the {window}")


@then(
    'after the {window:w} only version "{version}" answered',
    example='Then after the swap only version "2" answered',
)
def only_version_after(world: World, window: str, version: str) -> None:
    """Every inference request started after the window was answered by ``version`` (at least 20 of them),
    with the outputs that version computes."""
    _, end = _window(world, window)
    answers = [o for o in inference_in(world, end, None) if end is None or o.started > end]
    assert len(answers) >= 20, (
        f"expected at least 20 requests after the {window} to judge which version answers, got {len(answers)}"
    )
    wrong = [o for o in answers if not o.ok or o.model_version != version]
    seen = sorted({str(o.model_version) for o in answers})
    assert not wrong, (
        f"expected only version {version!r} after the {window}; answers came from {seen}, "
        f"{len(wrong)} of {len(answers)} not from {version!r}: {describe(wrong)}"
    )
    assert_computed(world, answers, f"after the {window}")
