"""Steps for storms: many workers registering at the same instant, many requests in flight at once."""

from __future__ import annotations

import time
import uuid

import pytest

from harness.drivers.worker import WorkerProbe
from harness.load.burst import send_burst
from harness.load.sender import Sent
from harness.slo import LatencySummary
from harness.steps_registry import given, then, when
from harness.waiting import during, poll
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)

#: How long the new worker processes may take to boot (50 real processes on 2 busy cores: ~40 s).
BOOT_TIMEOUT_S = 240.0

#: The burst of the scenario: what was sent and answered, the model, what the workers had served before.
_BURSTS_KEY = pytest.StashKey[tuple[list[Sent], str, int | None]]()


@given(
    "{count:d} more workers start while the gateway is paused",
    example="Given 50 more workers start while the gateway is paused",
    needs=("workers", "lifecycle"),
)
def workers_start_while_gateway_paused(world: World, count: int) -> None:
    """Freeze the gateway (SIGSTOP / docker pause), start ``count`` real worker processes and wait until each
    answers on its own port: they are up and keep trying to register with the frozen gateway, so that
    when it resumes their registrations all reach it at the same moment."""
    world.pause("gateway")
    world.mark("gateway_paused")
    # Booting dozens of workers at once on a small machine takes longer than the usual wait for one.
    names = set(world.add_workers(count, wait=False, boot_timeout=BOOT_TIMEOUT_S))
    pending = {w.name: WorkerProbe(w.name, w.url) for w in world.running_workers() if w.name in names}

    def still_booting() -> dict[str, WorkerProbe]:
        """The new workers that have not answered on their own port yet (each answer is kept)."""
        for name, probe in list(pending.items()):
            if probe.status() is not None:
                del pending[name]
        return pending

    poll(still_booting, lambda booting: not booting, timeout=BOOT_TIMEOUT_S, interval=0.5)
    running = {w.name for w in world.running_workers()}
    dead = sorted(names - running)
    assert not dead, f"expected {count} new workers to run, {len(dead)} exited: {dead[:5]}"
    assert not pending, (
        f"expected {count} new workers to answer on their own ports within {BOOT_TIMEOUT_S:g} s; "
        f"{len(pending)} did not: {sorted(pending)[:5]}"
    )
    print(f"{count} workers up in {time.time() - world.marks['gateway_paused']:.1f} s, gateway paused")


@when(
    "the gateway resumes and the waiting workers register at once",
    example="When the gateway resumes and the waiting workers register at once",
    needs=("lifecycle",),
)
def gateway_resumes(world: World) -> None:
    """Resume the frozen gateway: the queued registrations of every waiting worker arrive together."""
    world.resume("gateway")
    world.mark("gateway_resumed")


@then(
    "the registry stays unchanged for {beats:d} heartbeat intervals",
    example="Then the registry stays unchanged for 3 heartbeat intervals",
    needs=("admin",),
)
def registry_stable(world: World, beats: int) -> None:
    """The same workers under the same ids before and after ``beats`` heartbeat intervals: no entry was
    overwritten, expired or registered again (a worker sharing another's id would make one of them vanish)."""
    interval = world.spec.heartbeat_interval if world.spec else 1.0

    def snapshot() -> dict[str, str]:
        return {str(w.get("id")): str(w.get("name")) for w in world.gateway.workers()}

    def changes(after: dict[str, str]) -> str:
        gone = {i: n for i, n in before.items() if i not in after}
        new = {i: n for i, n in after.items() if i not in before}
        renamed = {i: (before[i], after[i]) for i in before.keys() & after.keys() if before[i] != after[i]}
        return f"ids gone {gone}, new ids {new}, ids that changed worker {renamed}"

    _wait_until_settled(world)
    before = snapshot()
    # observed every half interval, so an entry dropped and restored in between is seen too
    during(
        snapshot,
        lambda after: after == before,
        seconds=beats * interval,
        interval=interval / 2,
        what=f"the registry of {len(before)} workers unchanged ({beats} heartbeats)",
        seen=changes,
    )


#: How long registrations may take to settle (a worker whose registration timed out while the gateway was
#: paused retries; the gateway may answer the abandoned one first, then the retry replaces it).
SETTLE_S = 30.0


def _wait_until_settled(world: World) -> None:
    """Until every running worker knows the id the gateway lists it under (its own ``/worker/status``):
    no registration is still in flight, so the registry should not change any more."""

    def unsettled() -> list[str]:
        listed = {str(w.get("name")): str(w.get("id")) for w in world.gateway.workers()}
        found = []
        for info in world.running_workers():
            status = WorkerProbe(info.name, info.url).status() or {}
            if str(status.get("worker_id")) != listed.get(info.name):
                found.append(f"{info.name} says {status.get('worker_id')}, listed {listed.get(info.name)}")
        return found

    left = poll(unsettled, lambda found: not found, timeout=SETTLE_S, interval=0.5)
    assert not left, (
        f"registrations did not settle within {SETTLE_S:g} s: {len(left)} workers do not know "
        f"the id the gateway lists them under, e.g. {left[:3]}"
    )


def _served(world: World, model: str) -> int | None:
    """Inference requests all running workers answered so far (None if one did not tell)."""
    counts = [WorkerProbe(w.name, w.url).served(model) for w in world.running_workers()]
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


@when(
    "{count:d} inference requests for {model:w} are sent at the same time, each with its own id",
    example="When 200 inference requests for demo are sent at the same time, each with its own id",
)
def burst(world: World, count: int, model: str) -> None:
    """Release ``count`` requests (one thread each, behind a barrier) through the gateway at once."""
    served_before = _served(world, model)
    run = uuid.uuid4().hex[:6]
    ids = [f"burst-{run}-{i:04d}" for i in range(count)]
    world.mark("burst_started")
    sent = send_burst(world.v2, model, ids)
    world.mark("burst_ended")
    world.observations.extend(s.observation for s in sent)
    world.stash[_BURSTS_KEY] = (sent, model, served_before)
    print(f"burst of {count}: {LatencySummary.of(s.observation for s in sent)}")


@then(
    "each of the {count:d} requests was answered once, with its own id",
    example="Then each of the 200 requests was answered once, with its own id",
)
def burst_answered(world: World, count: int) -> None:
    """Every request got a 2xx answer echoing its own id, no id came back twice, and the workers ran
    exactly ``count`` inferences for them (none lost, none run twice by a retry)."""
    burst = world.stash.get(_BURSTS_KEY, None)
    assert burst is not None, "no burst of requests was sent in this scenario"
    sent, model, served_before = burst
    assert len(sent) == count, f"expected {count} requests in the burst, {len(sent)} were sent"
    failed = [s for s in sent if not s.observation.ok]
    statuses: dict[int, int] = {}
    for s in failed:
        statuses[s.observation.status] = statuses.get(s.observation.status, 0) + 1
    assert not failed, (
        f"expected all {count} requests to succeed; {len(failed)} did not (status: count {statuses}), "
        f"e.g. {failed[0].observation.status or 'no answer'} {failed[0].observation.error}"
    )
    wrong = [(s.request_id, s.echoed_id) for s in sent if s.echoed_id != s.request_id]
    assert not wrong, f"expected each answer to echo its request's id; {len(wrong)} did not, e.g. {wrong[:3]}"
    echoed = [s.echoed_id for s in sent]
    assert len(set(echoed)) == count, f"expected {count} distinct ids back, got {len(set(echoed))}"
    served_after = _served(world, model)  # the workers' own counters: one inference per request
    assert served_before is not None and served_after is not None, "a worker did not report what it served"
    served = served_after - served_before
    assert served == count, f"expected the workers to run {count} inferences for the burst, they ran {served}"
