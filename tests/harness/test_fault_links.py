"""The local backend's link faults on a real reference cluster: partition, heal, latency, teardown."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest

from harness.backends.base import BackendError
from harness.backends.local import LocalBackend
from harness.drivers.worker import WorkerProbe
from harness.targets.reference import ClusterSpec, ReferenceCluster
from harness.waiting import until
from harness.world import World

HEARTBEAT_S = 0.5  # expiry after 3 missed heartbeats = 1.5 s
UPSTREAM_TIMEOUT_S = 1.0


def _infer(client: httpx.Client) -> httpx.Response:
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]}]}
    return client.post("/v2/models/demo/infer", json=body)


def _workers(client: httpx.Client) -> list[dict]:
    answer = client.get("/admin/workers").json()
    return answer["workers"] if isinstance(answer, dict) else answer


def _wait(check, timeout: float, what: str = "the condition") -> float:
    """Seconds until ``check()`` is true; :class:`~harness.waiting.WaitTimeout` after ``timeout``."""
    started = time.monotonic()
    until(check, timeout=timeout, what=what)
    return time.monotonic() - started


@pytest.fixture
def linked_cluster(start_local_cluster, make_demo_spec) -> ReferenceCluster:
    spec: ClusterSpec = make_demo_spec(
        workers=2, heartbeat_interval=HEARTBEAT_S, upstream_timeout=UPSTREAM_TIMEOUT_S, fault_links=True
    )
    return start_local_cluster(spec)


@pytest.fixture
def linked(linked_cluster: ReferenceCluster) -> LocalBackend:
    """The backend of the linked cluster: where the faults are applied."""
    assert isinstance(linked_cluster.backend, LocalBackend)
    return linked_cluster.backend


@pytest.fixture
def client(linked_cluster: ReferenceCluster):
    assert linked_cluster.spec is not None
    with httpx.Client(
        base_url=linked_cluster.gateway_url,
        headers={"Authorization": f"Bearer {linked_cluster.spec.admin_token}"},
        timeout=10.0,
        trust_env=False,
    ) as c:
        yield c


def test_workers_are_reached_through_their_proxies(linked: LocalBackend, client: httpx.Client) -> None:
    listed = {w["name"]: w["url"] for w in _workers(client)}
    own = {s.name: s.url for s in linked.services() if s.kind == "worker"}
    assert set(listed) == {"worker-1", "worker-2"}
    for name, url in listed.items():
        assert url != own[name], "the gateway must reach the worker through its fault proxy"
    assert _infer(client).status_code == 200


def test_partition_stops_routing_then_heal_restores(
    linked_cluster: ReferenceCluster, linked: LocalBackend, client: httpx.Client
) -> None:
    probe = WorkerProbe("worker-2", linked.service("worker-2").url)
    old_id = linked_cluster.worker_id("worker-2")
    linked.partition("gateway", "worker-2")
    gone_after = _wait(
        lambda: "worker-2" not in {w["name"] for w in _workers(client)}, 5.0, "the gateway dropping worker-2"
    )
    assert gone_after <= 3 * HEARTBEAT_S + 1.0, f"expired after {gone_after:.2f} s"
    assert probe.status() is not None, "the worker itself keeps running: only the link is cut"
    answers = [_infer(client) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20

    linked.partition("gateway", "worker-1")  # the last worker too: the model is unavailable
    _wait(lambda: not _workers(client), 5.0, "the gateway dropping every worker")
    answer = _infer(client)
    assert answer.status_code == 503 and "demo" in answer.json()["error"]

    served_before = probe.served("demo")
    linked.heal_all()
    _wait(
        lambda: {"worker-1", "worker-2"} <= {w["name"] for w in _workers(client)},
        10.0,
        "both registering again",
    )
    new_ids = {w["id"] for w in _workers(client) if w["name"] == "worker-2"}
    assert old_id not in new_ids, "an expired worker registers again under a new id"
    for _ in range(20):
        assert _infer(client).status_code == 200
    assert probe.served("demo") > served_before, "requests reach the healed worker again"
    assert linked.links.clean()


def test_latency_is_added_and_removed(linked: LocalBackend, client: httpx.Client) -> None:
    linked.partition("gateway", "worker-2")  # one path only, so that every request crosses the delay
    _wait(lambda: len(_workers(client)) == 1, 5.0, "one worker left")

    def p50() -> float:
        times = []
        for _ in range(9):
            started = time.perf_counter()
            assert _infer(client).status_code == 200
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    base = p50()
    linked.set_latency("gateway", "worker-1", 0.3)
    slowed = p50()
    assert 0.28 <= slowed - base <= 0.6, f"p50 {base * 1000:.0f} ms -> {slowed * 1000:.0f} ms"

    linked.set_latency("gateway", "worker-1", 2.0)  # beyond the upstream deadline: a timely 504
    started = time.perf_counter()
    answer = _infer(client)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 504, answer.text
    assert elapsed < UPSTREAM_TIMEOUT_S + 0.5, f"answered after {elapsed:.2f} s"

    linked.set_latency("gateway", "worker-1", 0.0)
    assert p50() < base + 0.1


def test_links_are_only_between_the_gateway_and_a_worker(linked: LocalBackend) -> None:
    # the workers declare links with the gateway only: none between two workers
    with pytest.raises(BackendError, match=r"no fault-injectable link between 'worker-1' and 'worker-2'"):
        linked.partition("worker-1", "worker-2")
    with pytest.raises(BackendError, match="no fault-injectable link"):
        linked.partition("gateway", "worker-9")
    with pytest.raises(BackendError, match="no fault-injectable link"):
        linked.set_latency("worker-1", "worker-2", 0.1)
    with pytest.raises(BackendError, match=">= 0"):
        linked.set_latency("gateway", "worker-1", -0.1)
    assert linked.links.clean(), "a refused fault must leave every link clean"


def test_without_fault_links_the_backend_refuses_faults(local_cluster: ReferenceCluster) -> None:
    with pytest.raises(BackendError, match="links that accept network faults"):
        local_cluster.backend.partition("gateway", "worker-1")
    with pytest.raises(BackendError, match="links that accept network faults"):
        local_cluster.backend.set_latency("gateway", "worker-1", 0.1)


def test_world_heals_at_teardown_even_after_a_failure(linked: LocalBackend, tmp_path: Path) -> None:
    world = World(linked, workdir=tmp_path / "world")
    world.partition("gateway", "worker-2")
    world.add_latency("gateway", "worker-1", 500)
    assert not linked.links.clean()
    try:
        raise AssertionError("a step failed")
    except AssertionError:
        pass
    assert world.close() == []
    assert linked.links.clean(), linked.links.describe()


def test_teardown_closes_every_proxy(linked: LocalBackend) -> None:
    ports = [proxy.port for proxy in linked.links._proxies.values()]
    assert len(ports) == 4, "one proxy each way on each of the two gateway <-> worker links"
    linked.partition("gateway", "worker-1")
    linked.teardown()
    for port in ports:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=1.0, trust_env=False)


def test_a_reset_from_one_end_is_passed_on_not_swallowed() -> None:
    """A process killed with unread data resets its connections: the proxy must reset the other end too,
    or the gateway would wait for its deadline where a real link tells it at once."""
    import socket
    import struct
    import threading

    from harness.faults.proxy import FaultProxy

    listener = socket.create_server(("127.0.0.1", 0))

    def reset_after_reading() -> None:
        conn, _ = listener.accept()
        conn.recv(100)
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # with linger 0: RST, not FIN

    threading.Thread(target=reset_after_reading, daemon=True).start()
    proxy = FaultProxy("127.0.0.1", listener.getsockname()[1]).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5.0) as client:
            client.sendall(b"POST / HTTP/1.1\r\n\r\n")
            started = time.monotonic()
            with pytest.raises(ConnectionResetError):
                client.recv(100)
            assert time.monotonic() - started < 2.0
    finally:
        proxy.close()
        listener.close()
