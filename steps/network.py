"""Steps that cut, slow down and restore the network between the gateway and a worker.

The faults are real: an in-path TCP proxy on each gateway<->worker link (in the test process on the
local backend, a proxy container per link on docker) drops or delays the bytes. Neither service is
told; the steps judge what the gateway then answers. Every fault is undone at teardown.
"""

from __future__ import annotations

import time

import pytest

from harness.drivers.gateway import production_versions
from harness.drivers.worker import WorkerProbe
from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import describe, inference_in, poll
from steps.cluster import start_cluster
from steps.cluster_plan import require_setup

GATEWAY = "gateway"
#: Requests the load must have sent after a fault took effect before a Then judges them.
AFTER_FAULT_SAMPLES = 50
#: The gateway judges expiry in a periodic sweep (every half interval); the poll and a busy machine add
#: a little more. Both are allowed on top of the intervals a step names.
SWEEP_SLACK_INTERVALS = 0.5
SCHEDULING_SLACK_S = 0.25


#: When each link was cut, per World and worker (the expiry deadline counts from there).
_CUT_AT_KEY = pytest.StashKey[dict[str, float]]()
#: The ids the gateway listed each worker under when its link was cut.
_IDS_AT_CUT_KEY = pytest.StashKey[dict[str, set[str]]]()


def _heartbeat(world: World) -> float:
    assert world.spec is not None, "no cluster started in this scenario (missing a 'Given a cluster ...')"
    return world.spec.heartbeat_interval


def _listed_names(world: World) -> list[str]:
    return [str(w.get("name")) for w in world.gateway.workers()]


def probe(world: World, worker: str) -> WorkerProbe:
    """A direct probe of ``worker`` (its own port, never through a fault)."""
    return WorkerProbe(worker, world.service(worker).url)


# -- cluster ---------------------------------------------------------------------------------------
@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}", a heartbeat every '
    "{heartbeat:g} seconds and an upstream deadline of {deadline:Duration}",
    example='Given a cluster with 2 workers serving demo version "1", a heartbeat every 0.3 seconds '
    "and an upstream deadline of 1 second",
    needs=("workers", "links"),
    setup=True,
    provides=("links",),
)
def cluster_with_deadline(
    world: World, workers: int, model: str, version: str, heartbeat: float, deadline: float
) -> None:
    """A gateway and workers with a short heartbeat and the gateway's deadline for every call to a worker;
    the gateway<->worker links accept network faults (the same as the cluster step with the add-ons
    "the cluster has a heartbeat every ...", "... an upstream deadline of ..." and "... links accept
    network faults")."""
    start_cluster(
        world,
        workers,
        model,
        version,
        heartbeat_interval=heartbeat,
        upstream_timeout=deadline,
        fault_links=True,
    )


# -- faults ----------------------------------------------------------------------------------------
@given(
    "the network between the gateway and {worker:WorkerName} is cut",
    example="Given the network between the gateway and worker-2 is cut",
    needs=("links", "admin"),
    requires=("links",),
)
@when(
    "the network between the gateway and {worker:WorkerName} is cut",
    example="When the network between the gateway and worker-2 is cut",
    needs=("links", "admin"),
    requires=("links",),
)
def cut(world: World, worker: str) -> None:
    """Partition: every byte between the gateway and the worker is dropped, both ways (the worker's
    heartbeats and the gateway's requests hang); both processes keep running and are not told. Needs a
    cluster whose links accept network faults."""
    require_setup(world, "links")
    ids = {str(w.get("id")) for w in world.gateway.workers() if w.get("name") == worker}
    assert ids, f"expected the gateway to list {worker} before its network is cut, it does not"
    world.partition(GATEWAY, worker)
    world.stash.setdefault(_CUT_AT_KEY, {})[worker] = time.time()
    world.stash.setdefault(_IDS_AT_CUT_KEY, {})[worker] = ids


@when(
    "the network between the gateway and {worker:WorkerName} is restored",
    example="When the network between the gateway and worker-2 is restored",
    needs=("links",),
    requires=("links",),
)
def restore(world: World, worker: str) -> None:
    """Heal the link: traffic flows again (the worker finds out by itself that it must register again)."""
    require_setup(world, "links")
    world.heal(GATEWAY, worker)
    world.mark(f"{worker}_healed")


@when(
    "calls from the gateway to {worker:WorkerName} are delayed by {ms:d} ms",
    example="When calls from the gateway to worker-1 are delayed by 200 ms",
    needs=("links",),
    requires=("links",),
)
def delay(world: World, worker: str, ms: int) -> None:
    """Latency: every request the gateway sends the worker, with its answer, takes ``ms`` longer
    (heartbeats from the worker are not delayed). Needs a cluster whose links accept network faults."""
    require_setup(world, "links")
    world.add_latency(GATEWAY, worker, ms)


@when(
    "the delay on calls from the gateway to {worker:WorkerName} is removed",
    example="When the delay on calls from the gateway to worker-1 is removed",
    needs=("links",),
    requires=("links",),
)
def remove_delay(world: World, worker: str) -> None:
    """The link is fast again."""
    require_setup(world, "links")
    world.heal(GATEWAY, worker)


# -- what the gateway does about it ----------------------------------------------------------------
@given(
    "within 3 heartbeat intervals the gateway no longer lists {worker:WorkerName}",
    example="Given within 3 heartbeat intervals the gateway no longer lists worker-2",
    needs=("admin",),
)
@then(
    "within 3 heartbeat intervals the gateway no longer lists {worker:WorkerName}",
    example="Then within 3 heartbeat intervals the gateway no longer lists worker-2",
    needs=("admin",),
)
def stops_listing(world: World, worker: str) -> None:
    """Counted from the cut: the worker's 3rd missed heartbeat, plus the gateway's expiry sweep (half an
    interval) and a little scheduling slack. The instant is marked as ``<worker>_dropped``."""
    cut_at = world.stash.get(_CUT_AT_KEY, {}).get(worker)
    assert cut_at is not None, f"the network to {worker} was not cut in this scenario"
    limit = (3 + SWEEP_SLACK_INTERVALS) * _heartbeat(world) + SCHEDULING_SLACK_S
    remaining = max(0.0, cut_at + limit - time.time())
    names = poll(lambda: _listed_names(world), lambda ns: worker not in ns, timeout=remaining, interval=0.05)
    took = time.time() - cut_at
    assert worker not in names, (
        f"expected the gateway to stop listing {worker} within 3 heartbeat intervals of the cut "
        f"({limit:.2f} s with the sweep), it still lists it after {took:.2f} s: {names}"
    )
    world.mark(f"{worker}_dropped")


@then("{worker:WorkerName} is still running", example="Then worker-2 is still running", needs=("lifecycle",))
def still_running(world: World, worker: str) -> None:
    """The worker's process (or container) still runs: only its link was cut, nobody stopped it."""
    info = world.service(worker)
    code = world.exit_code(worker)
    assert info.running, f"expected {worker} to keep running while cut off, it exited with {code}"


@then(
    "every request sent after the gateway dropped {worker:WorkerName} was answered successfully",
    example="Then every request sent after the gateway dropped worker-2 was answered successfully",
)
def ok_after_drop(world: World, worker: str) -> None:
    """The load's requests that started once the gateway no longer listed the worker: each one a 2xx
    (the load must have sent at least a few dozen of them)."""
    dropped = world.marks.get(f"{worker}_dropped")
    assert dropped is not None, f"no earlier step saw the gateway drop {worker}"
    assert world.load is not None, "no load is running in this scenario (missing 'Given N users send ...')"
    run = world.load
    poll(
        lambda: sum(1 for o in run.samples() if o.started >= dropped),
        lambda n: n >= AFTER_FAULT_SAMPLES,
        timeout=30.0,
    )
    after = [o for o in inference_in(world, dropped, None) if o.started >= dropped]
    assert len(after) >= AFTER_FAULT_SAMPLES, (
        f"expected at least {AFTER_FAULT_SAMPLES} requests after the gateway dropped {worker}, "
        f"the load sent {len(after)}"
    )
    failed = [o for o in after if not o.ok]
    assert not failed, (
        f"expected every request after the gateway dropped {worker} to succeed on the other workers; "
        f"{len(failed)} of {len(after)} did not: {describe(failed)}"
    )


@then(
    "no request during the load waited longer than {limit:Duration}",
    example="Then no request during the load waited longer than 2 seconds",
)
def no_hang(world: World, limit: float) -> None:
    """Every request of the load got an answer (any status) within ``limit``: none hung on a cut link."""
    answers = inference_in(world, world.marks.get("load_started"), None)
    assert answers, "expected inference requests during the load, none were recorded"
    slow = [o for o in answers if o.latency_s > limit or o.status == 0]
    worst = max(o.latency_s for o in answers)
    assert not slow, (
        f"expected every request to be answered within {limit:g} s; {len(slow)} of {len(answers)} were not "
        f"(slowest {worst:.2f} s): {describe(slow)}"
    )


@then(
    "a request for {model:w} is answered {status:d} within {limit:Duration}, with an error naming {name:w}",
    example="Then a request for demo is answered 503 within 1 second, with an error naming demo",
)
def answered_with_error(world: World, model: str, status: int, limit: float, name: str) -> None:
    """One inference request: the gateway answers ``status`` in time, and its error names ``name``."""
    answer = world.gateway.infer(model, timeout=limit + 5.0)
    assert answer.status == status, (
        f"expected {status} for a request to {model}, got {answer.status or 'no answer'}: "
        f"{answer.error or answer.body!r}"
    )
    assert answer.latency_s <= limit, (
        f"expected the answer within {limit:g} s, it took {answer.latency_s:.2f} s"
    )
    assert name in (answer.error or ""), f"expected the error to name {name!r}, it says {answer.error!r}"


@then(
    "{count:Requests} for {model:w} are each answered 504 or 503 within {limit:Duration}",
    example="Then 5 inference requests for demo are each answered 504 or 503 within 1.5 seconds",
)
def timely_errors(world: World, count: int, model: str, limit: float) -> None:
    """Sequential requests on a link slower than the gateway's deadline: each one a gateway timeout or
    "unavailable" in time, never a hang (the client would wait ``limit`` + 10 s)."""
    answers = [world.gateway.infer(model, timeout=limit + 10.0) for _ in range(count)]
    wrong = [a for a in answers if a.status not in (503, 504) or a.latency_s > limit]
    shown = "; ".join(f"{a.status or 'no answer'} after {a.latency_s:.2f} s: {a.error}" for a in wrong[:5])
    assert not wrong, (
        f"expected {count} answers 504/503 within {limit:g} s each; {len(wrong)} were not: {shown}"
    )


@then(
    "{count:Requests} for {model:w} all succeed, none faster than {ms:d} ms",
    example="Then 10 inference requests for demo all succeed, none faster than 200 ms",
)
def slowed_but_ok(world: World, count: int, model: str, ms: int) -> None:
    """The delay is real and the requests still succeed: each answer took at least ``ms``."""
    answers = [world.gateway.infer(model) for _ in range(count)]
    failed = [a for a in answers if not a.ok]
    assert not failed, f"expected {count} successful answers, {len(failed)} failed: " + "; ".join(
        f"{a.status or 'no answer'} {a.error}" for a in failed[:5]
    )
    fastest = min(a.latency_s for a in answers)
    assert fastest >= ms / 1000, (
        f"expected no answer faster than {ms} ms, the fastest took {fastest * 1000:.0f} ms"
    )


def _held(entry: dict) -> set[tuple[str, str]]:
    return {(str(m.get("name")), str(m.get("version"))) for m in entry.get("models", [])}


@then(
    "within {seconds:g} seconds the gateway lists {worker:WorkerName} again under a new id",
    example="Then within 3 seconds the gateway lists worker-2 again under a new id",
    needs=("admin",),
)
def listed_again(world: World, seconds: float, worker: str) -> None:
    """After a heal the worker's next heartbeat is refused (it expired), so it registers again: the gateway
    lists it healthy under an id it did not have before the cut, holding every production version (the
    ones it was assigned at registration, reported by its next heartbeat), so that it serves again."""
    old = world.stash.get(_IDS_AT_CUT_KEY, {}).get(worker, set())

    def entries() -> tuple[list[dict], set[tuple[str, str]]]:
        production = set(production_versions(world.gateway.models()).items())
        listed = [
            w
            for w in world.gateway.workers()
            if w.get("name") == worker and w.get("healthy", False) and str(w.get("id")) not in old
        ]
        return listed, production

    def serving(found: tuple[list[dict], set[tuple[str, str]]]) -> bool:
        listed, production = found
        return any(production <= _held(w) for w in listed)

    listed, production = poll(entries, serving, timeout=seconds)
    every = [str(w.get("id")) for w in world.gateway.workers() if w.get("name") == worker]
    assert listed, (
        f"expected the gateway to list {worker} again under a new id within {seconds:g} s of the heal; "
        f"it lists it under {every or 'no id'} (ids before the cut: {sorted(old)})"
    )
    held = [sorted(_held(w)) for w in listed]
    assert serving((listed, production)), (
        f"expected {worker} listed again holding the production versions {sorted(production)} within "
        f"{seconds:g} s; it is listed as {[str(w.get('id')) for w in listed]} holding {held}"
    )


@then(
    "inference requests for {model:w} reach {worker:WorkerName} again",
    example="Then inference requests for demo reach worker-2 again",
    needs=("workers",),
)
def reach_again(world: World, model: str, worker: str) -> None:
    """20 requests through the gateway all succeed, and the worker's own request counter shows that it
    answered some of them."""
    worker_probe = probe(world, worker)
    before = worker_probe.served(model)
    assert before is not None, f"expected {worker} to answer on its own address, it did not"
    answers = [world.gateway.infer(model) for _ in range(20)]
    failed = [a for a in answers if not a.ok]
    assert not failed, f"expected 20 successful answers, {len(failed)} failed: " + "; ".join(
        f"{a.status or 'no answer'} {a.error}" for a in failed[:5]
    )
    after = worker_probe.served(model)
    assert after is not None and after > before, (
        f"expected {worker} to answer some of the 20 requests, its own counter went {before} -> {after}"
    )
