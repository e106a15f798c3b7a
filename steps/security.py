"""Steps about credentials: strangers who try to join or steer the cluster, an insider who overreaches,
the join token's rotation, and what ``ps`` shows of the services.

A stranger's attempt is a real HTTP call from the test process to the gateway's worker registry or admin
API, or a real worker process started with no or a wrong join token. The Then steps judge what the
gateway answered, listed, counted in ``/metrics`` and recorded in its audit trail, and what reached the
stranger's worker.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import parse
import pytest

from harness.drivers.gateway import Answer
from harness.drivers.worker import WorkerProbe
from harness.steps_registry import given, parse_type, then, when
from harness.waiting import during
from harness.world import World
from steps import (
    network,  # noqa: F401  (registers the WorkerName type used below)
    types,  # noqa: F401  (custom parse types used below)
)
from steps._support import poll
from steps.cluster import start_cluster

#: Where a stranger claims its worker listens (the discard port: nothing answers there).
STRANGER_URL = "http://127.0.0.1:9/stranger"
INSIDER_URL = "http://127.0.0.1:9/insider"
AUDIT_WAIT_S = 5.0  # the gateway audits off the request path
#: How many refused registrations show that a stranger's worker really tried.
STRANGER_TRIES = 2
STRANGER_WAIT_S = 20.0


@parse_type("Credential")
@parse.with_pattern(r"no token|a wrong token|the admin token|the join token|the old join token")
def parse_credential(text: str) -> str:
    """What a caller presents: ``no token``, ``a wrong token``, ``the admin token``, ``the join token``,
    ``the old join token`` (the one a rotation replaced)."""
    return text


@parse_type("RegistryAction")
@parse.with_pattern(r"heartbeat for|remove")
def parse_registry_action(text: str) -> str:
    """``heartbeat for`` / ``remove``: what a caller attempts on a worker's registry entry."""
    return text


@dataclass
class _Security:
    answer: Answer | None = None  # the last attempt's answer
    attempt: str = ""
    refusals_before: Counter[tuple[str, str]] = field(default_factory=Counter)
    audit_id_before: int = 0
    ids_before: dict[str, str] = field(default_factory=dict)  # worker name -> id, before the attempt
    insider: dict[str, str] = field(default_factory=dict)  # {"id", "worker_token"}
    insider_alive: threading.Event | None = None  # cleared: the insider's heartbeats stop
    old_join_token: str | None = None
    rotated_at: float = 0.0
    stranger: str | None = None


_STATE_KEY = pytest.StashKey[_Security]()


def _security(world: World) -> _Security:
    return world.stash.setdefault(_STATE_KEY, _Security())


def _spec(world: World):
    assert world.spec is not None, "no cluster started in this scenario (missing a 'Given a cluster ...')"
    return world.spec


def _token(world: World, credential: str) -> str | None:
    spec = _spec(world)
    if credential == "no token":
        return None
    if credential == "a wrong token":
        return f"not-the-token-{secrets.token_hex(8)}"
    if credential == "the admin token":
        return spec.admin_token
    if credential == "the join token":
        return spec.join_token
    old = _security(world).old_join_token
    assert old is not None, (
        "the join token was not rotated in this scenario (missing 'When the join token ...')"
    )
    return old


def _listed(world: World) -> dict[str, dict]:
    return {str(w.get("name")): w for w in world.gateway.workers()}


def _worker_id(world: World, worker: str) -> str:
    listed = _listed(world)
    assert worker in listed, f"expected the gateway to list {worker}, it lists {sorted(listed)}"
    return str(listed[worker]["id"])


def _before_attempt(world: World) -> _Security:
    """What the gateway counted, audited and listed before an attempt: the Then steps judge the change."""
    state = _security(world)
    state.refusals_before = world.gateway.auth_refusals()
    audit = world.gateway.audit()
    state.audit_id_before = max((int(e.get("id", 0)) for e in audit), default=0)
    state.ids_before = {name: str(w["id"]) for name, w in _listed(world).items()}
    return state


# -- strangers and insiders -----------------------------------------------------------------------------
@when(
    "a stranger presenting {credential:Credential} registers a worker",
    example="When a stranger presenting a wrong token registers a worker",
    needs=("workers", "admin"),
)
def stranger_registers(world: World, credential: str) -> None:
    """Register a worker that claims to serve demo version "1", presenting ``credential`` as join token."""
    state = _before_attempt(world)
    models = [{"name": "demo", "version": "1"}]
    state.answer = world.gateway.register_worker(
        STRANGER_URL, "stranger", token=_token(world, credential), models=models
    )
    state.attempt = f"registering a worker presenting {credential}"


@when(
    "a stranger presenting {credential:Credential} tries to {action:RegistryAction} {worker:WorkerName}",
    example="When a stranger presenting no token tries to remove worker-1",
    needs=("workers", "admin"),
)
def stranger_acts_on_worker(world: World, credential: str, action: str, worker: str) -> None:
    """Heartbeat for, or deregister, a listed worker with ``credential`` and no worker token of its own."""
    state = _before_attempt(world)
    worker_id = _worker_id(world, worker)
    state.answer = _act(world, action, worker_id, _token(world, credential), None)
    state.attempt = f"{action} {worker} presenting {credential}"


@given(
    "an insider holding the join token registers a worker of its own",
    example="Given an insider holding the join token registers a worker of its own",
    needs=("workers", "admin"),
)
def insider_registers(world: World) -> None:
    """Register (with the cluster's join token) an entry that serves nothing; keep its worker token."""
    answer = world.gateway.register_worker(INSIDER_URL, "insider", token=_spec(world).join_token)
    assert answer.status == 200, (
        f"expected the join token to register a worker, got {answer.status}: {answer.error}"
    )
    body = answer.body if isinstance(answer.body, dict) else {}
    assert body.get("id") and body.get("worker_token"), (
        f"expected the registration to answer an id and the worker's own token, it answered {answer.body!r}"
    )
    state = _security(world)
    state.insider = {"id": str(body["id"]), "worker_token": str(body["worker_token"])}
    state.insider_alive = _keep_heartbeating(world, state.insider)


def _keep_heartbeating(world: World, insider: dict[str, str]) -> threading.Event:
    """Like any worker, the insider heartbeats for itself (three times per interval) so that the gateway
    does not expire its entry however long the steps take; until the entry is gone or the scenario ends."""
    alive = threading.Event()
    alive.set()
    period = _spec(world).heartbeat_interval / 3
    join_token = _spec(world).join_token

    def beat() -> None:
        while alive.is_set():
            try:
                answer = _act(world, "heartbeat", insider["id"], join_token, insider["worker_token"])
            except Exception:  # the gateway is going away with the scenario
                return
            if answer.status == 404:  # deregistered: nothing left to keep alive
                return
            time.sleep(period)

    threading.Thread(target=beat, name="insider-heartbeats", daemon=True).start()
    world.defer("stop the insider's heartbeats", alive.clear)
    return alive


@when(
    "the insider tries to {action:RegistryAction} {worker:WorkerName}",
    example="When the insider tries to remove worker-1",
    needs=("workers", "admin"),
)
def insider_acts_on_worker(world: World, action: str, worker: str) -> None:
    """Heartbeat for, or deregister, another worker with the join token and the insider's own worker token."""
    state = _before_attempt(world)
    assert state.insider, "no insider registered in this scenario (missing 'Given an insider ...')"
    worker_id = _worker_id(world, worker)
    state.answer = _act(world, action, worker_id, _spec(world).join_token, state.insider["worker_token"])
    state.attempt = f"the insider's {action} {worker}"


@then(
    "the insider can remove its own worker",
    example="Then the insider can remove its own worker",
    needs=("workers", "admin"),
)
def insider_removes_itself(world: World) -> None:
    """With the join token and its own worker token, the insider's entry is deregistered and gone."""
    state = _security(world)
    insider = state.insider
    assert insider, "no insider registered in this scenario (missing 'Given an insider ...')"
    if state.insider_alive is not None:
        state.insider_alive.clear()
    answer = _act(world, "remove", insider["id"], _spec(world).join_token, insider["worker_token"])
    assert answer.status == 200, f"expected the insider to remove itself, got {answer.status}: {answer.error}"
    ids = {str(w.get("id")) for w in world.gateway.workers()}
    assert insider["id"] not in ids, f"expected {insider['id']} gone from the registry, it is still listed"


def _act(world: World, action: str, worker_id: str, token: str | None, worker_token: str | None) -> Answer:
    if action == "remove":
        return world.gateway.deregister_worker(worker_id, token=token, worker_token=worker_token)
    return world.gateway.heartbeat_worker(worker_id, token=token, worker_token=worker_token)


@when(
    "a client calls the admin API presenting {credential:Credential}",
    example="When a client calls the admin API presenting the join token",
    needs=("workers", "admin"),
)
def admin_with(world: World, credential: str) -> None:
    """``GET /admin/workers`` presenting ``credential`` instead of the admin token."""
    state = _before_attempt(world)
    state.answer = world.gateway.admin_as("/admin/workers", token=_token(world, credential))
    state.attempt = f"the admin API presenting {credential}"


# -- what the gateway answered, listed, counted and recorded ------------------------------------------
@then(
    'the gateway refuses it with {status:d} saying "{reason}"',
    example='Then the gateway refuses it with 401 saying "missing join token"',
    needs=("workers", "admin"),
)
def refused_with(world: World, status: int, reason: str) -> None:
    """The last attempt was answered ``status`` with an error that says ``reason``, and the gateway's own
    refusal counters rose (it refused on purpose, not by accident)."""
    state = _security(world)
    answer = state.answer
    assert answer is not None, "no attempt was made in this scenario (missing a 'When ... presenting' step)"
    assert answer.status == status and reason in (answer.error or ""), (
        f"expected {state.attempt} to be refused with {status} saying {reason!r}, "
        f"the gateway answered {answer.status or 'nothing'}: {answer.error or answer.body!r}"
    )
    rise = world.gateway.auth_refusals()
    rise.subtract(state.refusals_before)
    assert sum(n for n in rise.values() if n > 0) >= 1, (
        f"the gateway answered {status} to {state.attempt} but counted no refusal in sut_auth_refused_total"
    )


@then(
    "the gateway counted the refusal and recorded it in its audit trail",
    example="Then the gateway counted the refusal and recorded it in its audit trail",
    needs=("workers", "admin"),
)
def refusal_counted_and_audited(world: World) -> None:
    """``sut_auth_refused_total`` rose by exactly one, and a new ``auth_refused`` audit entry has the
    refused request's status."""
    state = _security(world)
    answer = state.answer
    assert answer is not None, "no attempt was made in this scenario"
    rise = world.gateway.auth_refusals()
    rise.subtract(state.refusals_before)
    counted = {k: n for k, n in rise.items() if n}
    assert sum(counted.values()) == 1, (
        f"expected the gateway to count {state.attempt} as one refusal in sut_auth_refused_total, "
        f"its counters rose by {counted or 'nothing'}"
    )

    def new_entries() -> list[dict]:
        return [
            e
            for e in world.gateway.audit()
            if e.get("action") == "auth_refused" and int(e.get("id", 0)) > state.audit_id_before
        ]

    entries = poll(new_entries, bool, timeout=AUDIT_WAIT_S, interval=0.2)
    statuses = [e.get("details", {}).get("status") for e in entries]
    assert answer.status in statuses, (
        f"expected an auth_refused entry with status {answer.status} in the audit trail after "
        f"{state.attempt}, new entries: {entries or 'none'}"
    )


@then(
    "the gateway lists only the cluster's workers",
    example="Then the gateway lists only the cluster's workers",
    needs=("workers", "admin"),
)
def lists_only_cluster_workers(world: World) -> None:
    """The registry lists exactly the workers the backend started with the join token, no stranger."""
    listed = sorted(_listed(world))
    cluster = sorted(w.name for w in world.running_workers())
    assert listed == cluster, (
        f"expected the gateway to list exactly the cluster's workers {cluster}, it lists {listed}"
    )


@then(
    "{worker:WorkerName} is still listed and serves {model:w}",
    example="Then worker-1 is still listed and serves demo",
    needs=("workers", "admin"),
)
def still_listed_and_serving(world: World, worker: str, model: str) -> None:
    """Same id as before the attempt, healthy, and its own counter shows it answering through the gateway."""
    state = _security(world)
    listed = _listed(world)
    assert worker in listed, f"expected the gateway to still list {worker}, it lists {sorted(listed)}"
    entry = listed[worker]
    before = state.ids_before.get(worker)
    assert before is None or str(entry["id"]) == before, (
        f"expected {worker} still under its id {before}, the gateway lists it as {entry['id']} (new entry)"
    )
    assert entry.get("healthy"), f"expected {worker} healthy, the gateway lists {entry}"
    worker_probe = WorkerProbe(worker, world.service(worker).url)
    served_before = worker_probe.served(model)
    answers = [world.gateway.infer(model) for _ in range(5)]
    failed = [a for a in answers if not a.ok]
    assert not failed, (
        f"expected {model} to be served, {len(failed)} of 5 failed: {failed[0].status} {failed[0].error}"
    )
    served_after = worker_probe.served(model)
    assert served_before is not None and served_after is not None and served_after > served_before, (
        f"expected {worker} itself to answer requests for {model}; "
        f"its counter went {served_before} -> {served_after}"
    )


# -- a stranger's worker process ------------------------------------------------------------------------
@given(
    "a stranger's worker presenting {credential:Credential} keeps trying to register",
    example="Given a stranger's worker presenting a wrong token keeps trying to register",
    needs=("workers", "admin"),
)
def stranger_worker(world: World, credential: str) -> None:
    """Start a real worker with ``credential`` as its join token and wait until it has really tried: the
    gateway refused it ``STRANGER_TRIES`` times, or (a gateway that lets it in) it registered, loaded what
    the gateway assigned and reported it in a heartbeat."""
    before = world.gateway.auth_refusals()
    state = _security(world)
    name = state.stranger = world.start_stranger(_token(world, credential))
    probe = WorkerProbe(name, world.service(name).url)

    def outcome() -> tuple[int, dict | None]:
        now = world.gateway.auth_refusals()
        status = probe.status()
        joined = status if status and status.get("worker_id") and status.get("models") else None
        return sum(now[k] - before[k] for k in now if k[0] == "worker"), joined

    refused, joined = poll(
        outcome, lambda o: o[0] >= STRANGER_TRIES or o[1] is not None, timeout=STRANGER_WAIT_S, interval=0.2
    )
    if joined is not None:  # let its first heartbeat with the loaded models reach the gateway
        time.sleep(2 * _spec(world).heartbeat_interval)
        return
    assert refused >= STRANGER_TRIES, (
        f"expected {name} to try to register ({STRANGER_TRIES} refusals) within {STRANGER_WAIT_S:g} s, "
        f"the gateway refused it {refused} times; its log:\n{world.logs(name)[-2000:]}"
    )


@then(
    "the stranger's worker received no inference request",
    example="Then the stranger's worker received no inference request",
    needs=("workers", "admin"),
)
def stranger_received_nothing(world: World) -> None:
    """The stranger's worker is alive and answering, and counts no inference request at all."""
    name = _security(world).stranger
    assert name is not None, "no stranger's worker in this scenario (missing 'Given a stranger's worker ...')"
    served = WorkerProbe(name, world.service(name).url).requests_total()
    assert served is not None, f"expected {name} to answer /metrics (is it still running?), it did not"
    assert served == 0, f"expected no client request to reach {name}, it answered {served} inference requests"


# -- rotation ----------------------------------------------------------------------------------------
@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}" '
    "and a join token overlap of {seconds:g} seconds",
    example='Given a cluster with 1 worker serving demo version "1" and a join token overlap of 3 seconds',
    needs=("workers", "admin"),
    setup=True,
)
def cluster_with_overlap(world: World, workers: int, model: str, version: str, seconds: float) -> None:
    """Start the cluster; after a rotation the gateway accepts the previous join token ``seconds`` more."""
    start_cluster(world, workers, model, version, join_token_overlap=seconds)


@when("the join token is rotated", example="When the join token is rotated", needs=("workers", "admin"))
def rotate_join_token(world: World) -> None:
    """Rewrite the cluster's join token file with a new token; nothing is restarted."""
    state = _before_attempt(world)
    state.old_join_token = _spec(world).join_token
    world.rotate_join_token(f"rotated-{secrets.token_hex(12)}")
    state.rotated_at = time.monotonic()


def _register_and_leave(world: World, token: str | None) -> Answer:
    """Register an entry serving nothing with ``token``; remove it again at once when accepted."""
    answer = world.gateway.register_worker(INSIDER_URL, "old-token", token=token)
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 200 and body.get("id"):
        left = world.gateway.deregister_worker(
            str(body["id"]), token=token, worker_token=body.get("worker_token")
        )
        assert left.status == 200, f"expected the entry to be removed with the same token, got {left.status}"
    return answer


@then(
    "a worker presenting the old join token is still accepted",
    example="Then a worker presenting the old join token is still accepted",
    needs=("workers", "admin"),
)
def old_token_accepted(world: World) -> None:
    """Within the overlap, the replaced token still registers (and deregisters) a worker."""
    state = _security(world)
    answer = _register_and_leave(world, _token(world, "the old join token"))
    elapsed = time.monotonic() - state.rotated_at
    overlap = _spec(world).join_token_overlap
    assert elapsed < overlap, (
        f"the check came {elapsed:.1f} s after the rotation, past the {overlap:g} s overlap"
    )
    assert answer.status == 200, (
        f"expected the old join token to be accepted {elapsed:.1f} s into the {overlap:g} s overlap, "
        f"the gateway answered {answer.status}: {answer.error}"
    )


@then(
    "within {seconds:g} seconds a worker presenting the old join token is refused with {status:d}",
    example="Then within 5 seconds a worker presenting the old join token is refused with 401",
    needs=("workers", "admin"),
)
def old_token_refused(world: World, seconds: float, status: int) -> None:
    """Once the overlap is over (and not before), the replaced token is refused."""
    state = _security(world)
    old = _token(world, "the old join token")
    answer = poll(
        lambda: _register_and_leave(world, old), lambda a: a.status != 200, timeout=seconds, interval=0.2
    )
    elapsed = time.monotonic() - state.rotated_at
    overlap = _spec(world).join_token_overlap
    assert answer.status == status, (
        f"expected the old join token refused with {status} within {seconds:g} s of the rotation, "
        f"after {elapsed:.1f} s the gateway answered {answer.status}: {answer.error}"
    )
    assert elapsed >= overlap - 0.1, (
        f"expected the old join token accepted for the whole {overlap:g} s overlap, "
        f"it was refused after {elapsed:.1f} s"
    )


@then(
    "{worker:WorkerName} keeps its registration for {beats:d} heartbeat intervals",
    example="Then worker-1 keeps its registration for 4 heartbeat intervals",
    needs=("workers", "admin"),
)
def keeps_registration(world: World, worker: str, beats: int) -> None:
    """Listed healthy under the same id the whole time: its heartbeats are accepted (none refused and
    expired, no re-registration under a new id)."""
    state = _security(world)
    before = state.ids_before.get(worker) or _worker_id(world, worker)
    during(
        lambda: _listed(world).get(worker),
        lambda entry: entry is not None and str(entry["id"]) == before and bool(entry.get("healthy")),
        seconds=beats * _spec(world).heartbeat_interval,
        interval=0.2,
        what=f"{worker} listed and healthy as {before}",
        seen=lambda entry: f"the gateway lists {entry}",
    )


@then(
    "the gateway recorded the rotation of the join token in its audit trail",
    example="Then the gateway recorded the rotation of the join token in its audit trail",
    needs=("workers", "admin"),
)
def rotation_audited(world: World) -> None:
    """A ``join_token_rotated`` audit entry, and the status reports one rotation; neither holds a token."""
    entries = poll(
        lambda: [e for e in world.gateway.audit() if e.get("action") == "join_token_rotated"],
        bool,
        timeout=AUDIT_WAIT_S,
    )
    assert entries, "expected a join_token_rotated entry in the audit trail, there is none"
    status = world.gateway.status().get("join_token") or {}
    assert status.get("rotations") == 1, (
        f"expected the gateway to report 1 rotation, its status says {status}"
    )
    old = _security(world).old_join_token or ""
    assert old not in str(entries) and _spec(world).join_token not in str(entries) + str(status)


# -- what `ps` shows ----------------------------------------------------------------------------------
@then(
    "no service's command line shows the admin token or the join token",
    example="Then no service's command line shows the admin token or the join token",
    needs=("lifecycle", "workers"),
)
def no_token_on_command_lines(world: World) -> None:
    """Every service process's command line (as ``ps`` shows it to anyone) holds neither token."""
    spec = _spec(world)
    checked = []
    for info in world.services():
        if not info.running:
            continue
        lines = world.command_lines(info.name)
        assert any("sut." in line for line in lines), (
            f"expected {info.name}'s processes to include a sut service, `ps` shows {lines}"
        )
        for secret, what in ((spec.admin_token, "admin token"), (spec.join_token, "join token")):
            shown = [line for line in lines if secret in line]
            assert not shown, f"{info.name}'s command line shows the {what}: {shown}"
        checked.append(info.name)
    assert "gateway" in checked and len(checked) >= 2, (
        f"expected the gateway and workers checked, got {checked}"
    )
