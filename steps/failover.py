"""Steps about providers of a model: pools of real workers in priority order, the lock one of them holds,
faults on the lock holder's workers, and the audit trail the gateway keeps of every move.

Faults are real: workers killed, cut off by the fault proxies, or told to refuse inference (their own
load shedding: 503 or 429 over HTTP). The Then steps judge the gateway's answers (each names its
provider, ``X-Provider``), its lock status and its audit trail, never a flag of ours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import parse
import pytest

from harness.drivers.worker import WorkerProbe
from harness.observations import Observation
from harness.steps_registry import given, parse_type, settle, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import describe, inference_in, poll
from steps.cluster import start_cluster

#: Lock moves the audit trail records (acquire and release are not moves).
MOVES = ("failover", "failback")
#: The test process's clock and the gateway's are the same machine's; this absorbs rounding.
CLOCK_SLACK_S = 0.05
UPSTREAM_TIMEOUT_S = 1.0
PROBE_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 1.0


@parse_type("Fault")
@parse.with_pattern(r"are killed|are cut off from the gateway|answer 503|answer 429")
def parse_fault(text: str) -> str:
    """What happens to a provider's workers: ``are killed``, ``are cut off from the gateway``,
    ``answer 503`` (overloaded, under maintenance) or ``answer 429`` (quota exhausted)."""
    return text


@dataclass
class _Providers:
    model: str = ""
    pools: dict[str, list[str]] = field(default_factory=dict)  # provider -> its workers' service names
    threshold: int = 0
    hold_s: float = 0.0
    fault_at: float | None = None  # wall clock of the last fault applied
    flapping: tuple[float, float] | None = None  # wall clock window of a flapping provider
    before_restart: dict | None = None  # the lock status just before the gateway restarted


_STATE_KEY = pytest.StashKey[_Providers]()


def _providers(world: World) -> _Providers:
    state = world.stash.setdefault(_STATE_KEY, _Providers())
    assert state.pools, (
        "no providers in this scenario (missing 'Given a cluster serving ... with providers ...')"
    )
    return state


# -- setting up ------------------------------------------------------------------------------------------
@given(
    'a cluster serving {model:w} version "{version}" with providers "{first}" ({first_count:Workers}) '
    'and "{second}" ({second_count:Workers})',
    example='Given a cluster serving demo version "1" with providers "primary" (2 workers) '
    'and "backup" (1 worker)',
    needs=("workers", "admin", "links"),
)
def cluster_with_providers(
    world: World, model: str, version: str, first: str, first_count: int, second: str, second_count: int
) -> None:
    """Start a gateway (with fault-injectable worker links) and one pool of workers per provider; the
    pools' order is the providers' priority."""
    start_cluster(world, 0, model, version, upstream_timeout=UPSTREAM_TIMEOUT_S, fault_links=True)
    settle(world)  # the gateway now: the pools join it below
    state = world.stash.setdefault(_STATE_KEY, _Providers())
    state.model = model
    for provider, count in ((first, first_count), (second, second_count)):
        state.pools[provider] = world.add_workers(count, pool=provider)


@given(
    "failover after {threshold:d} consecutive failures with a hold time of {hold:g} seconds",
    example="Given failover after 3 consecutive failures with a hold time of 4 seconds",
    needs=("workers", "admin"),
)
def configure_failover(world: World, threshold: int, hold: float) -> None:
    """Give the model its providers in priority order; wait until the first holds the lock and the
    monitor has found every provider healthy."""
    state = _providers(world)
    config = {
        "providers": [{"name": name, "pool": name} for name in state.pools],
        "failure_threshold": threshold,
        "hold_s": hold,
        "probe_interval_s": PROBE_INTERVAL_S,
        "probe_timeout_s": PROBE_TIMEOUT_S,
    }
    answer = world.gateway.configure_providers(state.model, config)
    assert answer.status == 200, f"expected the providers to be accepted, got {answer.status}: {answer.error}"
    state.threshold, state.hold_s = threshold, hold
    first = next(iter(state.pools))
    status = poll(
        lambda: world.gateway.providers(state.model),
        lambda s: all(p["health"]["healthy"] for p in s["providers"]),
        timeout=30.0,
        interval=0.2,
    )
    unhealthy = [
        (p["name"], p["health"]["last_probe"]) for p in status["providers"] if not p["health"]["healthy"]
    ]
    assert not unhealthy, (
        f"expected every provider to pass the gateway's health probes, these did not: {unhealthy}"
    )
    assert status["lock"]["active"] == first, (
        f"expected {first} to hold the lock, the gateway says {status['lock']}"
    )


# -- faults ------------------------------------------------------------------------------------------------
@when(
    'the workers of provider "{provider}" {fault:Fault}',
    example='When the workers of provider "primary" are killed',
    needs=("workers", "admin"),
)
def fault_on_provider(world: World, provider: str, fault: str) -> None:
    """Apply a real fault to every worker of ``provider``; the instant is kept for the Then steps."""
    state = _providers(world)
    world.mark("fault")
    state.fault_at = world.marks["fault"]
    for name in state.pools[provider]:
        if fault == "are killed":
            world.kill_service(name)
        elif fault == "are cut off from the gateway":
            world.partition("gateway", name)
        else:
            _shed(world, name, int(fault.split()[-1]))


@when(
    'the workers of provider "{provider}" are restarted',
    example='When the workers of provider "primary" are restarted',
    needs=("workers", "admin"),
)
def restart_provider(world: World, provider: str) -> None:
    """Start the provider's (killed) workers again; each registers anew in its pool. The recovery counts
    from the first restart (the provider is healthy as soon as one of its workers is)."""
    world.mark("recovered")
    for name in _providers(world).pools[provider]:
        world.restart_service(name)


@when(
    'the workers of provider "{provider}" go down and up every second for {seconds:d} seconds',
    example='When the workers of provider "primary" go down and up every second for 8 seconds',
    needs=("workers", "admin"),
)
def flap_provider(world: World, provider: str, seconds: int) -> None:
    """Every second the provider's workers switch between refusing inference (503) and serving."""
    state = _providers(world)
    started = time.time()
    for second in range(seconds):
        status = 503 if second % 2 == 0 else None
        for name in state.pools[provider]:
            _shed(world, name, status)
        time.sleep(max(0.0, started + second + 1 - time.time()))
    for name in state.pools[provider]:
        _shed(world, name, None)
    state.flapping = (started, time.time())


def _shed(world: World, name: str, status: int | None) -> None:
    assert world.spec is not None
    code = WorkerProbe(name, world.service(name).url).shed(status, join_token=world.spec.join_token)
    assert code == 200, f"expected {name} to take the load-shedding order, it answered {code}"
    if status is not None:
        world.defer(f"stop {name} shedding", lambda: _unshed_quietly(world, name))


def _unshed_quietly(world: World, name: str) -> None:
    info = world.service(name)
    if info.running and world.spec is not None:
        WorkerProbe(name, info.url).shed(None, join_token=world.spec.join_token)


@when(
    "a client sends {count:d} inference requests for {model:w} with bad input",
    example="When a client sends 100 inference requests for demo with bad input",
    needs=("workers", "admin"),
)
def bad_input(world: World, count: int, model: str) -> None:
    """Requests whose tensor has 3 features instead of 4: the client's mistake, answered 400."""
    world.mark("bad_input_started")
    tensor = {**world.model(model).request(1)["inputs"][0], "shape": [1, 3], "data": [0.5, 1.0, -1.0]}
    for _ in range(count):
        world.gateway.infer(model, inputs=[tensor])
    world.mark("bad_input_ended")


# -- Then: the lock ----------------------------------------------------------------------------------------
@then(
    'within {seconds:g} seconds provider "{provider}" holds the lock of {model:w}',
    example='Then within 5 seconds provider "backup" holds the lock of demo',
    needs=("workers", "admin"),
)
def holds_lock_within(world: World, seconds: float, provider: str, model: str) -> None:
    """The gateway's lock status names ``provider`` within ``seconds`` of the last fault."""
    state = _providers(world)
    since = state.fault_at or time.time()
    status = poll(
        lambda: world.gateway.providers(model),
        lambda s: s["lock"]["active"] == provider,
        timeout=max(0.0, since + seconds - time.time()),
        interval=0.1,
    )
    took = status["lock"]["since"] - since
    assert status["lock"]["active"] == provider, (
        f"expected {provider} to hold the lock of {model} within {seconds:g} s of the fault, the gateway "
        f"says {status['lock']}; providers: "
        f"{[(p['name'], p['counters'], p['health']) for p in status['providers']]}"
    )
    assert took <= seconds, (
        f"expected the lock to move within {seconds:g} s of the fault, it took {took:.2f} s"
    )


@then(
    'provider "{provider}" holds the lock of {model:w}',
    example='Then provider "primary" holds the lock of demo',
    needs=("workers", "admin"),
)
def holds_lock(world: World, provider: str, model: str) -> None:
    """The gateway's lock status names ``provider`` as the holder right now."""
    status = world.gateway.providers(model)
    assert status["lock"]["active"] == provider, (
        f"expected {provider} to hold the lock, the gateway says {status['lock']}"
    )


@then(
    'provider "{provider}" still holds the lock of {model:w} with its counters',
    example='Then provider "backup" still holds the lock of demo with its counters',
    needs=("workers", "admin"),
)
def still_holds_after_restart(world: World, provider: str, model: str) -> None:
    """After the gateway's restart: same holder, same number of switches, no counter went back."""
    state = _providers(world)
    before = state.before_restart
    assert before is not None, "the gateway was not restarted through a providers step in this scenario"
    after = world.gateway.providers(model)
    assert after["lock"]["active"] == provider, (
        f"expected {provider} to still hold the lock, the gateway says {after['lock']}"
    )
    assert after["lock"]["switches"] == before["lock"]["switches"], (
        f"expected {before['lock']['switches']} switches still recorded, "
        f"the gateway says {after['lock']['switches']}"
    )
    old = {p["name"]: p["counters"] for p in before["providers"]}
    for entry in after["providers"]:
        for key in ("requests", "successes", "total_failures"):
            assert entry["counters"][key] >= old[entry["name"]][key], (
                f"expected {entry['name']}'s {key} to survive the restart ({old[entry['name']][key]}), "
                f"the gateway now says {entry['counters'][key]}"
            )


@when("the gateway restarts", example="When the gateway restarts", needs=("workers", "admin"))
def restart_gateway(world: World) -> None:
    """Note the lock status, then kill the gateway and start it again on the same data. The gateway
    writes its counters every 0.25 s (a switch at once): what it reported 0.6 s before the kill must
    survive it."""
    state = _providers(world)
    state.before_restart = world.gateway.providers(state.model)
    time.sleep(0.6)
    world.restart_service("gateway")


@then(
    'provider "{provider}" gets the lock of {model:w} back after the hold time, within {seconds:g} seconds',
    example='Then provider "primary" gets the lock of demo back after the hold time, within 10 seconds',
    needs=("workers", "admin"),
)
def fails_back(world: World, provider: str, model: str, seconds: float) -> None:
    """Failback: not before the provider has been healthy for the hold time, and within ``seconds``."""
    state = _providers(world)
    recovered = world.marks.get("recovered")
    assert recovered is not None, "no recovery was made in this scenario (missing 'When ... are restarted')"
    status = poll(
        lambda: world.gateway.providers(model),
        lambda s: s["lock"]["active"] == provider,
        timeout=max(0.0, recovered + seconds - time.time()),
        interval=0.2,
    )
    assert status["lock"]["active"] == provider, (
        f"expected {provider} to get the lock back, the gateway says {status['lock']}"
    )
    (failback,) = [e for e in _trail(world, model) if e["action"] == "failback"] or [None]
    assert failback is not None, "expected a failback entry in the audit trail"
    assert failback["t"] - recovered >= state.hold_s, (
        f"expected the failback no sooner than the {state.hold_s:g} s hold, "
        f"it came {failback['t'] - recovered:.2f} s "
        "after the workers were back"
    )


@parse_type("Times")
@parse.with_pattern(r"never|once|twice|\d+ times")
def parse_times(text: str) -> int:
    """``never`` / ``once`` / ``twice`` / ``3 times`` -> the count."""
    words = {"never": 0, "once": 1, "twice": 2}
    return words[text] if text in words else int(text.split()[0])


@then(
    "the lock of {model:w} moved {times:Times}",
    example="Then the lock of demo moved once",
    needs=("workers", "admin"),
)
def moved_times(world: World, model: str, times: int) -> None:
    """Failovers plus failbacks in the audit trail and in the lock status."""
    moves = [e for e in _trail(world, model) if e["action"] in MOVES]
    assert len(moves) == times, f"expected {times} lock moves of {model}, the audit trail has {_story(moves)}"


@then(
    "while it flapped the lock of {model:w} failed over at most once per hold period",
    example="Then while it flapped the lock of demo failed over at most once per hold period",
    needs=("workers", "admin"),
)
def failovers_per_hold(world: World, model: str) -> None:
    """While the provider flapped: at least one failover, at most one per hold period, no failback."""
    state = _providers(world)
    assert state.flapping is not None, "no provider flapped in this scenario"
    start, end = state.flapping
    moves = [e for e in _trail(world, model) if e["action"] in MOVES and start <= e["t"] <= end]
    failovers = [e for e in moves if e["action"] == "failover"]
    allowed = max(1, int((end - start) // state.hold_s))
    assert failovers, f"expected the flapping provider to lose the lock once, the trail has {_story(moves)}"
    assert len(failovers) <= allowed, (
        f"expected at most {allowed} failovers in {end - start:.1f} s with a {state.hold_s:g} s hold, "
        f"the audit trail has {_story(moves)}"
    )
    late = [e for e in moves if e["action"] == "failback"]
    assert not late, f"expected no failback while the provider flapped, the trail has {_story(moves)}"


# -- Then: what the clients saw ----------------------------------------------------------------------------
@then(
    "during the load at most the failure threshold of requests failed",
    example="Then during the load at most the failure threshold of requests failed",
    needs=("workers", "admin"),
)
def errors_within_threshold(world: World) -> None:
    """No more requests of the load failed (any non-2xx or no answer) than the failover threshold."""
    state = _providers(world)
    answers = inference_in(world, world.marks.get("load_started"), None)
    assert answers, "expected inference requests during the load, none were recorded"
    failed = [o for o in answers if not o.ok]
    assert len(failed) <= state.threshold, (
        f"expected at most {state.threshold} failed requests (the failover threshold) of {len(answers)}, "
        f"{len(failed)} failed: {describe(failed)}"
    )


@then(
    "every answer during the load names the provider that held the lock of {model:w} at that moment",
    example="Then every answer during the load names the provider that held the lock of demo at that moment",
    needs=("workers", "admin"),
)
def answers_name_the_lock_holder(world: World, model: str) -> None:
    """Each HTTP answer names one provider, and that provider held the lock at some instant of the request
    (the lock's history is the audit trail)."""
    answers = [o for o in inference_in(world, world.marks.get("load_started"), None) if o.status]
    assert answers, "expected inference answers during the load, none were recorded"
    history = _holders(world, model)
    unnamed = [o for o in answers if not o.provider]
    assert not unnamed, (
        f"expected every answer to name its provider, {len(unnamed)} did not: {describe(unnamed)}"
    )
    wrong = [o for o in answers if not _held_during(history, o)]
    assert not wrong, (
        f"expected each answer from the provider holding the lock at that moment; {len(wrong)} of "
        f"{len(answers)} were not: {[(o.provider, round(o.started, 3), o.status) for o in wrong[:5]]}; "
        f"lock history: {history}"
    )


@then(
    'every one of them is answered 400 by provider "{provider}"',
    example='Then every one of them is answered 400 by provider "primary"',
    needs=("workers", "admin"),
)
def bad_input_answered(world: World, provider: str) -> None:
    """Every bad request was answered 400 by ``provider``, and the gateway counted them as client errors."""
    start, end = world.window("bad_input_started", "bad_input_ended")
    answers = [o for o in world.observations.select(start=start, end=end) if "/infer" in o.target]
    assert answers, "expected the bad requests to be recorded"
    wrong = [o for o in answers if o.status != 400 or o.provider != provider]
    assert not wrong, (
        f"expected every bad request answered 400 by {provider}; {len(wrong)} were not: {describe(wrong)}"
    )
    state = _providers(world)
    (entry,) = [p for p in world.gateway.providers(state.model)["providers"] if p["name"] == provider]
    assert entry["counters"]["client_errors"] >= len(answers), (
        f"expected the gateway to count the {len(answers)} bad requests against {provider} as client errors, "
        f"it counts {entry['counters']}"
    )


@then(
    'provider "{provider}" counted {count:d} client errors and no failure',
    example='Then provider "primary" counted 100 client errors and no failure',
    needs=("workers", "admin"),
)
def counted_client_errors(world: World, provider: str, count: int) -> None:
    """The provider's counters: at least ``count`` client errors and not one failure."""
    state = _providers(world)
    (entry,) = [p for p in world.gateway.providers(state.model)["providers"] if p["name"] == provider]
    counters = entry["counters"]
    assert counters["client_errors"] >= count and counters["total_failures"] == 0, (
        f"expected {provider} to count {count} client errors and no failure, it counts {counters}"
    )


# -- Then: the audit trail --------------------------------------------------------------------------------
@then(
    "the audit trail of {model:w} tells in order: {actions}",
    example="Then the audit trail of demo tells in order: acquire, failover, lock_restored",
    needs=("workers", "admin"),
)
def trail_in_order(world: World, model: str, actions: str) -> None:
    """The trail's actions, oldest first, are exactly ``actions``; each entry has a time, a provider, a
    reason and the counters of every provider at that moment; the ids increase."""
    wanted = [a.strip() for a in actions.split(",")]
    trail = world.gateway.failover_audit(model)
    entries = trail["entries"]
    assert [e["action"] for e in entries] == wanted, (
        f"expected the audit trail {wanted}, it tells {_story(entries)}"
    )
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), f"expected increasing ids, got {ids}"
    times = [e["t"] for e in entries]
    assert times == sorted(times), f"expected the entries in time order, got {times}"
    incomplete = [
        e
        for e in entries
        if not (e.get("at") and e.get("provider") and e.get("reason") and e.get("counters"))
    ]
    assert not incomplete, (
        f"expected every entry to have a time, a provider, a reason and counters: {incomplete}"
    )
    assert trail["limit"] == 1000 and trail["dropped"] == 0, (
        f"expected a 1000-entry bound, nothing dropped: {trail}"
    )


# -- helpers ------------------------------------------------------------------------------------------------
def _trail(world: World, model: str) -> list[dict]:
    return world.gateway.failover_audit(model)["entries"]


def _story(entries: list[dict]) -> list[tuple[str, str, str]]:
    return [(e["action"], e.get("from_provider", ""), e.get("provider", "")) for e in entries]


def _holders(world: World, model: str) -> list[tuple[float, str]]:
    """(since, provider) for every lock holder, oldest first, from the audit trail."""
    return [
        (float(e["t"]), str(e["provider"]))
        for e in _trail(world, model)
        if e["action"] in ("acquire", "failover", "failback", "lock_restored")
    ]


def _held_during(history: list[tuple[float, str]], obs: Observation) -> bool:
    start, end = obs.started - CLOCK_SLACK_S, obs.ended + CLOCK_SLACK_S
    for i, (since, provider) in enumerate(history):
        until = history[i + 1][0] if i + 1 < len(history) else float("inf")
        if provider == obs.provider and since <= end and until >= start:
            return True
    return False
