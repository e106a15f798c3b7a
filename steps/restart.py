"""Steps that kill a worker in the middle of a real, long inference and restart it.

The long inference is real: the "slow" model (``sut.demo_models.build_slow_model``, dozens of dense
layers) with a batch sized from one timed request, so that it keeps the worker busy for seconds on
this machine. The steps check on the worker itself that the request is running before killing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from fixtures.models import build_slow_model, rows_for
from harness.drivers.background import BackgroundCall
from harness.drivers.v2 import Answer
from harness.steps_registry import given, then, when
from harness.waiting import poll
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps.network import probe

#: Rows of the timed batch that sizes the long one (a fraction of a second on the slow model).
CALIBRATION_ROWS = 300
IN_FLIGHT_WAIT_S = 10.0


@dataclass
class LongRequest:
    model: str
    rows: int
    expected_s: float
    call: BackgroundCall[Answer]
    worker: str | None = None  # the worker running it
    worker_ids: set[str] = field(default_factory=set)  # the gateway's ids for that worker before the kill
    killed_at: float | None = None


_LONG_KEY = pytest.StashKey[LongRequest]()


def _request(world: World) -> LongRequest:
    request = world.stash.get(_LONG_KEY, None)
    assert request is not None, "no long request was sent in this scenario (missing 'Given a request ...')"
    return request


@given(
    'the slow model with version "{version}"',
    example='Given the slow model with version "1"',
    needs=("workers",),
)
def slow_model(world: World, version: str) -> None:
    """Build a real, deliberately slow ONNX model ``slow`` (many dense layers) in the artifact root."""
    artifact = world.build_artifact("slow", version, lambda root: build_slow_model(root, "slow", version))
    assert artifact.path.is_file(), f"expected the slow model's artifact at {artifact.path}"


@given(
    "a request for {model:w} with a batch that takes about {seconds:d} seconds is in flight on its worker",
    example="Given a request for slow with a batch that takes about 6 seconds is in flight on its worker",
    needs=("workers",),
)
def long_request_in_flight(world: World, model: str, seconds: int) -> None:
    """Time a small batch through the gateway, send a batch sized to take ``seconds`` from another thread,
    and wait until a worker reports it running (``/worker/status``)."""
    world.v2.infer(model, rows=10)  # warm-up: the first run of a session is slower
    timed = world.v2.infer(model, rows=CALIBRATION_ROWS)
    assert timed.ok, f"expected the timing request to succeed, got {timed.status}: {timed.error}"
    rows = rows_for(seconds, timed.latency_s, CALIBRATION_ROWS)
    sent = BackgroundCall.start(
        f"POST /v2/models/{model}/infer ({rows} rows)",
        lambda: world.v2.infer(model, rows=rows, timeout=seconds * 4 + 30.0),
    )
    request = LongRequest(model, rows, timed.latency_s * rows / CALIBRATION_ROWS, sent)
    world.stash[_LONG_KEY] = request
    world.defer("wait for the long request", lambda: sent.abandon(seconds * 4 + 35.0))

    def busy_worker() -> str | None:
        """The first running worker that reports a request in flight."""
        return next((i.name for i in world.running_workers() if probe(world, i.name).in_flight() > 0), None)

    request.worker = poll(
        busy_worker,
        lambda busy: busy is not None or sent.answered_at is not None,
        timeout=IN_FLIGHT_WAIT_S,
        interval=0.05,
    )
    assert sent.answered_at is None, (
        f"expected a {rows}-row batch to take about {seconds} s, it was answered already: "
        f"{sent.answer.status if sent.answer else '?'} after {sent.answered_at - sent.requested_at:.2f} s"
    )
    assert request.worker is not None, (
        f"expected a worker to report the {rows}-row request running within {IN_FLIGHT_WAIT_S:g} s; none did"
    )


@when(
    "the worker running it is killed",
    example="When the worker running it is killed",
    needs=("workers", "lifecycle", "admin"),
)
def kill_busy_worker(world: World) -> None:
    """SIGKILL the worker that runs the long request (no drain, no deregistration)."""
    request = _request(world)
    assert request.worker is not None
    request.worker_ids = {
        str(w.get("id")) for w in world.gateway.workers() if w.get("name") == request.worker
    }
    assert request.worker_ids, f"expected the gateway to list {request.worker} before the kill; it does not"
    assert request.call.answered_at is None, "the long request was answered before the kill: make it longer"
    request.killed_at = time.time()
    code = world.kill_service(request.worker)
    assert code is not None, f"expected {request.worker} to be dead after SIGKILL, it still runs"


@then(
    "the request is answered 502 or 503 within {limit:g} seconds of the kill, with an error naming {name:w}",
    example="Then the request is answered 502 or 503 within 2 seconds of the kill, with an error naming slow",
)
def answered_after_kill(world: World, limit: float, name: str) -> None:
    """The client of the killed worker gets a clear error quickly, long before its batch would have ended."""
    request = _request(world)
    assert request.killed_at is not None, "no worker was killed"
    sent = request.call
    sent.wait(limit + 60.0)
    assert sent.error is None, f"the long request broke in the test process: {sent.error!r}"
    assert sent.answered_at is not None and sent.answer is not None, (
        f"expected an answer within {limit:g} s of the kill; the request still hangs after {limit + 60:g} s"
    )
    answer, took = sent.answer, sent.answered_at - request.killed_at
    assert answer.status in (502, 503), (
        f"expected 502 or 503 for the request whose worker was killed, got {answer.status or 'no answer'} "
        f"after {took:.2f} s: {answer.error or answer.body!r}"[:600]
    )
    assert took <= limit, (
        f"expected the error within {limit:g} s of the kill, it came after {took:.2f} s "
        f"(the batch alone takes about {request.expected_s:.1f} s)"
    )
    assert name in (answer.error or ""), f"expected the error to name {name!r}, it says {answer.error!r}"


@when(
    "the killed worker is restarted",
    example="When the killed worker is restarted",
    needs=("workers", "lifecycle"),
)
def restart_killed(world: World) -> None:
    """Start the worker again under the same name and address; returns once it has registered."""
    request = _request(world)
    assert request.worker is not None
    world.restart_service(request.worker)


@then(
    "the gateway lists the restarted worker under a new id",
    example="Then the gateway lists the restarted worker under a new id",
    needs=("admin",),
)
def new_id(world: World) -> None:
    """A healthy registry entry for the restarted worker, under an id it did not have before the kill."""
    request = _request(world)
    listed = [
        w for w in world.gateway.workers() if w.get("name") == request.worker and w.get("healthy", False)
    ]
    ids = {str(w.get("id")) for w in listed}
    assert ids, f"expected the gateway to list {request.worker} healthy after its restart, it does not"
    assert not ids & request.worker_ids, (
        f"expected {request.worker} under a new id after the restart; it had {sorted(request.worker_ids)} "
        f"and is listed healthy as {sorted(ids)}"
    )


@given(
    "the gateway is restarted and its workers have registered again",
    example="Given the gateway is restarted and its workers have registered again",
    needs=("lifecycle", "workers", "admin"),
)
@when(
    "the gateway is restarted and its workers have registered again",
    example="When the gateway is restarted and its workers have registered again",
    needs=("lifecycle", "workers", "admin"),
)
def restart_gateway(world: World) -> None:
    """Kill the gateway and start it again (same address, its catalog read back from the database); returns
    once every running worker it listed before has registered with the new process, under a new id,
    holding the production versions: the next step does not race the registrations."""
    running = {w.name for w in world.running_workers()}
    before = {str(w.get("name")): str(w.get("id")) for w in world.gateway.workers()}
    expected = sorted(set(before) & running)
    world.restart_service("gateway")
    after = {str(w.get("name")): str(w.get("id")) for w in world.gateway.workers() if w.get("healthy")}
    missing = [n for n in expected if n not in after]
    assert not missing, (
        f"expected {expected} registered again after the gateway restart; it lists {sorted(after)}"
    )
    same = [f"{n} (id {after[n]})" for n in expected if after[n] == before[n]]
    assert not same, f"expected new ids from the restarted gateway, these kept theirs: {same}"
