"""Link faults on the docker backend, on real containers: a fault-proxy container per declared link.

A reference cluster started with ``fault_links`` declares a link between each worker and the gateway; the
docker backend (:mod:`harness.faults.docker_links`) runs a proxy container ``link-<worker>-gateway`` on
each (``harness.faults.proxy_server``), and partitions / latency go through it. Without ``fault_links``
there is no link to fault and the backend says so. Skipped, with the reason, when no Docker engine or
base image is available.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.backends.base import BackendError
from harness.backends.docker import LABEL_SERVICE, DockerBackend
from harness.docker_cleanup import LABEL_SCENARIO
from harness.faults.docker_links import DockerLinks
from harness.targets.reference import ReferenceCluster
from harness.waiting import until

pytestmark = pytest.mark.docker

HEARTBEAT_S = 0.5
UPSTREAM_TIMEOUT_S = 1.0
BODY = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]}


def _require_docker() -> None:
    try:
        import docker

        from harness.docker_images import resolve_base_image

        client = docker.from_env(timeout=10)
        client.ping()
        resolve_base_image(client)
        client.close()
    except Exception as exc:  # any reason to skip is said
        pytest.skip(f"no usable Docker engine / base image: {exc}")


def _start(tmp_path: Path, make_demo_spec, workers: int = 2, **overrides) -> Iterator[ReferenceCluster]:
    _require_docker()
    backend = DockerBackend(tmp_path / "cluster")
    cluster = ReferenceCluster(backend)
    try:
        cluster.start(
            make_demo_spec(
                workers=workers,
                heartbeat_interval=HEARTBEAT_S,
                upstream_timeout=UPSTREAM_TIMEOUT_S,
                **overrides,
            )
        )
        yield cluster
    finally:
        cluster.teardown()
        backend.teardown()


@pytest.fixture
def linked_cluster(tmp_path: Path, make_demo_spec) -> Iterator[ReferenceCluster]:
    yield from _start(tmp_path, make_demo_spec, fault_links=True)


@pytest.fixture
def linked(linked_cluster: ReferenceCluster) -> DockerBackend:
    """The backend of the linked cluster: where the faults are applied."""
    assert isinstance(linked_cluster.backend, DockerBackend)
    return linked_cluster.backend


@pytest.fixture
def admin(linked_cluster: ReferenceCluster) -> Iterator[httpx.Client]:
    assert linked_cluster.spec is not None
    with httpx.Client(
        base_url=linked_cluster.gateway_url,
        headers={"Authorization": f"Bearer {linked_cluster.spec.admin_token}"},
        timeout=10.0,
        trust_env=False,
    ) as client:
        yield client


def _names(client: httpx.Client) -> set[str]:
    return {w["name"] for w in _workers(client)}


def _wait(check, timeout: float, what: str = "the condition") -> float:
    started = time.monotonic()
    until(check, timeout=timeout, what=what)
    return time.monotonic() - started


def _workers(client: httpx.Client) -> list[dict]:
    answer = client.get("/admin/workers").json()
    return answer["workers"] if isinstance(answer, dict) else answer


def _infer(client: httpx.Client) -> httpx.Response:
    return client.post("/v2/models/demo/infer", json=BODY)


def _proxy_containers(backend: DockerBackend) -> list:
    client = backend.docker_container("gateway").client
    labelled = client.containers.list(all=True, filters={"label": f"{LABEL_SCENARIO}={backend.scenario_id}"})
    return [c for c in labelled if c.labels.get(LABEL_SERVICE, "").startswith("link-")]


def test_without_fault_links_a_partition_is_refused(tmp_path: Path, make_demo_spec) -> None:
    """No network-disconnect fallback: a cluster without fault links has no link to cut, and says so."""
    started = _start(tmp_path, make_demo_spec, workers=1)
    cluster = next(started)
    try:
        backend = cluster.backend
        with pytest.raises(BackendError, match="no fault-injectable link between 'gateway' and 'worker-1'"):
            backend.partition("gateway", "worker-1")
        with pytest.raises(BackendError, match="no fault-injectable link"):
            backend.set_latency("gateway", "worker-1", 0.2)
        assert _proxy_containers(backend) == []
        assert [w["name"] for w in cluster.admin.listed_workers()] == ["worker-1"]
    finally:
        started.close()


# -- with fault_links: a fault-proxy container on each worker link ----------------------------------------


def test_workers_are_reached_through_their_proxy_containers(linked, admin) -> None:
    proxies = {c.labels[LABEL_SERVICE]: c for c in _proxy_containers(linked)}
    assert sorted(proxies) == ["link-worker-1-gateway", "link-worker-2-gateway"]
    for container in proxies.values():
        assert container.status == "running"
        published = container.attrs["NetworkSettings"]["Ports"]["9000/tcp"]
        assert {b["HostIp"] for b in published} == {"127.0.0.1"}, published
    urls = {w["name"]: w["url"].rstrip("/") for w in _workers(admin)}
    assert urls == {
        "worker-1": "http://link-worker-1-gateway:10002",
        "worker-2": "http://link-worker-2-gateway:10002",
    }, "each worker advertises its proxy's backward port, so the gateway's calls cross it"
    placement = linked.placement("worker-1")
    assert placement.url_of("gateway") == "http://link-worker-1-gateway:10001"
    assert [_infer(admin).status_code for _ in range(10)] == [200] * 10
    log = proxies["link-worker-1-gateway"].logs().decode()
    assert "link forward:" in log and "link backward:" in log, f"the proxy logs its links: {log[-500:]}"


def test_partition_blackholes_the_link_and_heal_restores_it(linked, admin) -> None:
    linked.partition("gateway", "worker-2")
    took = _wait(lambda: "worker-2" not in _names(admin), timeout=3 * HEARTBEAT_S + 2.0)
    # Only the link is cut: the worker runs and still answers on its own published port.
    own = httpx.get(linked.service("worker-2").url + "/v2/health/live", timeout=5.0, trust_env=False)
    assert own.status_code == 200
    assert linked.service("worker-2").running, "only the link is cut, the container runs"
    assert [_infer(admin).status_code for _ in range(20)] == [200] * 20
    links: DockerLinks = linked.links
    faults = links.describe()
    assert faults["worker-2->gateway"]["mode"] == faults["gateway->worker-2"]["mode"] == "blackhole"
    assert faults["worker-1->gateway"]["mode"] == "pass"
    assert not links.clean()

    linked.heal("gateway", "worker-2")
    _wait(lambda: "worker-2" in _names(admin), timeout=15.0)
    assert links.clean()
    print(f"worker-2 dropped {took:.2f} s after the partition")


def test_latency_is_added_and_removed(linked, admin) -> None:
    linked.partition("gateway", "worker-2")  # one path only, so that every request crosses the delay
    _wait(lambda: _names(admin) == {"worker-1"}, timeout=3 * HEARTBEAT_S + 2.0)

    def p50() -> float:
        times = []
        for _ in range(9):
            started = time.perf_counter()
            assert _infer(admin).status_code == 200
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    base = p50()
    linked.set_latency("gateway", "worker-1", 0.3)
    slowed = p50()
    print(f"requested +300 ms: p50 {base * 1000:.0f} ms -> {slowed * 1000:.0f} ms")
    assert 0.28 <= slowed - base <= 0.6, f"p50 {base * 1000:.0f} ms -> {slowed * 1000:.0f} ms"

    linked.set_latency("gateway", "worker-1", 2.0)  # beyond the upstream deadline: a timely 504
    started = time.perf_counter()
    answer = _infer(admin)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 504, answer.text
    assert elapsed < UPSTREAM_TIMEOUT_S + 0.5, f"answered after {elapsed:.2f} s"

    linked.set_latency("gateway", "worker-1", 0.0)
    assert p50() < base + 0.1
    with pytest.raises(BackendError, match="no fault-injectable link between 'worker-1' and 'worker-2'"):
        linked.set_latency("worker-1", "worker-2", 0.1)


def test_a_restarted_worker_keeps_its_proxy(linked_cluster, linked, admin) -> None:
    before = {c.labels[LABEL_SERVICE]: c.id for c in _proxy_containers(linked)}
    old_worker = linked.service("worker-1").ident
    linked_cluster.restart("worker-1")
    assert linked.service("worker-1").ident != old_worker, "a new worker container"
    after = {c.labels[LABEL_SERVICE]: c.id for c in _proxy_containers(linked)}
    assert after == before, "the same proxy containers serve the restarted worker"
    linked.partition("gateway", "worker-2")
    _wait(lambda: _names(admin) == {"worker-1"}, timeout=3 * HEARTBEAT_S + 2.0)
    linked.set_latency("gateway", "worker-1", 0.4)
    started = time.perf_counter()
    assert _infer(admin).status_code == 200
    assert time.perf_counter() - started >= 0.4, "the new container is reached through the proxy"


def test_teardown_removes_the_proxy_containers(tmp_path: Path, make_demo_spec) -> None:
    started = _start(tmp_path, make_demo_spec, workers=1, fault_links=True)
    backend = next(started).backend
    assert len(_proxy_containers(backend)) == 1
    started.close()  # the fixture's finally: teardown

    import docker

    fresh = docker.from_env(timeout=10)
    try:
        left = fresh.containers.list(all=True, filters={"label": f"{LABEL_SCENARIO}={backend.scenario_id}"})
    finally:
        fresh.close()
    assert left == [], [c.name for c in left]
    assert (tmp_path / "cluster" / "logs" / "link-worker-1-gateway.log").read_text(), (
        "the proxy's log is kept"
    )
