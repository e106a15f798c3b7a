"""Link faults on the docker backend, on real containers.

Without ``fault_links`` a partition takes the worker's container off the network (and latency is refused:
no netem); with ``fault_links`` a fault-proxy container (``harness.faults.proxy_server``) sits on each
worker link and partitions / latency go through it. ``harness/backends/docker.py`` mixes
``DockerLinkFaults`` in. Skipped, with the reason, when no Docker engine or base image is available.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.backends.base import BackendError
from harness.backends.docker import DockerBackend
from harness.docker_cleanup import LABEL_SCENARIO
from harness.faults.docker_links import LINK_PREFIX, DockerLinkFaults

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
    assert issubclass(DockerBackend, DockerLinkFaults), "the docker backend must mix DockerLinkFaults in"


def _start(tmp_path: Path, make_demo_spec, workers: int = 2, **overrides) -> Iterator[DockerBackend]:
    _require_docker()
    backend = DockerBackend(tmp_path / "cluster")
    try:
        backend.start(
            make_demo_spec(
                workers=workers,
                heartbeat_interval=HEARTBEAT_S,
                upstream_timeout=UPSTREAM_TIMEOUT_S,
                **overrides,
            )
        )
        yield backend
    finally:
        backend.teardown()


@pytest.fixture
def docker_cluster(tmp_path: Path, make_demo_spec) -> Iterator[DockerBackend]:
    yield from _start(tmp_path, make_demo_spec)


@pytest.fixture
def linked_cluster(tmp_path: Path, make_demo_spec) -> Iterator[DockerBackend]:
    yield from _start(tmp_path, make_demo_spec, fault_links=True)


@pytest.fixture
def admin(linked_cluster: DockerBackend) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=linked_cluster.gateway_url,
        headers={"Authorization": f"Bearer {linked_cluster.spec.admin_token}"},
        timeout=10.0,
        trust_env=False,
    ) as client:
        yield client


def _names(client: httpx.Client) -> set[str]:
    answer = client.get("/admin/workers").json()
    workers = answer["workers"] if isinstance(answer, dict) else answer
    return {w["name"] for w in workers}


def _wait(check, timeout: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not true within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


def _workers(client: httpx.Client) -> list[dict]:
    answer = client.get("/admin/workers").json()
    return answer["workers"] if isinstance(answer, dict) else answer


def _infer(client: httpx.Client) -> httpx.Response:
    return client.post("/v2/models/demo/infer", json=BODY)


def _proxy_containers(backend: DockerBackend) -> list:
    client = backend.docker_container("gateway").client
    labelled = client.containers.list(all=True, filters={"label": f"{LABEL_SCENARIO}={backend.scenario_id}"})
    return [c for c in labelled if c.labels.get("servingbdd.service", "").startswith(LINK_PREFIX)]


def test_partition_and_heal_a_worker_container(docker_cluster) -> None:
    body = BODY
    with httpx.Client(
        base_url=docker_cluster.gateway_url,
        headers={"Authorization": f"Bearer {docker_cluster.spec.admin_token}"},
        timeout=10.0,
        trust_env=False,
    ) as client:
        docker_cluster.partition("gateway", "worker-2")
        took = _wait(lambda: "worker-2" not in _names(client), timeout=3 * HEARTBEAT_S + 2.0)
        assert docker_cluster.service("worker-2").running, "only the network is cut, the container runs"
        statuses = [client.post("/v2/models/demo/infer", json=body).status_code for _ in range(20)]
        assert statuses == [200] * 20, statuses

        docker_cluster.heal("gateway", "worker-2")
        _wait(lambda: "worker-2" in _names(client), timeout=15.0)
        own = httpx.get(
            docker_cluster.service("worker-2").url + "/v2/health/live", timeout=5.0, trust_env=False
        )
        assert own.status_code == 200, "the backend follows the worker's new host port after the reconnect"
        statuses = [client.post("/v2/models/demo/infer", json=body).status_code for _ in range(20)]
        assert statuses == [200] * 20, statuses
        print(f"worker-2 dropped {took:.2f} s after the disconnect")

        with pytest.raises(BackendError, match="no `tc`"):
            docker_cluster.set_latency("gateway", "worker-1", 0.2)


# -- with fault_links: a fault-proxy container on each worker link ----------------------------------------


def test_workers_are_reached_through_their_proxy_containers(linked_cluster, admin) -> None:
    proxies = {c.labels["servingbdd.service"]: c for c in _proxy_containers(linked_cluster)}
    assert sorted(proxies) == ["link-worker-1", "link-worker-2"]
    for container in proxies.values():
        assert container.status == "running"
        published = container.attrs["NetworkSettings"]["Ports"]["9000/tcp"]
        assert {b["HostIp"] for b in published} == {"127.0.0.1"}, published
    urls = {w["name"]: w["url"].rstrip("/") for w in _workers(admin)}
    assert urls == {"worker-1": "http://link-worker-1:8001", "worker-2": "http://link-worker-2:8001"}
    assert [_infer(admin).status_code for _ in range(10)] == [200] * 10
    assert "to_worker" in proxies["link-worker-1"].logs().decode(), "the proxy logs its links"


def test_partition_blackholes_the_link_and_heal_restores_it(linked_cluster, admin) -> None:
    linked_cluster.partition("gateway", "worker-2")
    took = _wait(lambda: "worker-2" not in _names(admin), timeout=3 * HEARTBEAT_S + 2.0)
    # Only the link is cut: the worker runs and still answers on its own published port.
    own = httpx.get(linked_cluster.service("worker-2").url + "/v2/health/live", timeout=5.0, trust_env=False)
    assert own.status_code == 200
    assert [_infer(admin).status_code for _ in range(20)] == [200] * 20
    assert not linked_cluster._link_proxies.clean()

    linked_cluster.heal("gateway", "worker-2")
    _wait(lambda: "worker-2" in _names(admin), timeout=15.0)
    assert linked_cluster._link_proxies.clean()
    print(f"worker-2 dropped {took:.2f} s after the partition")


def test_latency_is_added_and_removed(linked_cluster, admin) -> None:
    linked_cluster.partition("gateway", "worker-2")  # one path only, so that every request crosses the delay
    _wait(lambda: _names(admin) == {"worker-1"}, timeout=3 * HEARTBEAT_S + 2.0)

    def p50() -> float:
        times = []
        for _ in range(9):
            started = time.perf_counter()
            assert _infer(admin).status_code == 200
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    base = p50()
    linked_cluster.set_latency("gateway", "worker-1", 0.3)
    slowed = p50()
    print(f"requested +300 ms: p50 {base * 1000:.0f} ms -> {slowed * 1000:.0f} ms")
    assert 0.28 <= slowed - base <= 0.6, f"p50 {base * 1000:.0f} ms -> {slowed * 1000:.0f} ms"

    linked_cluster.set_latency("gateway", "worker-1", 2.0)  # beyond the upstream deadline: a timely 504
    started = time.perf_counter()
    answer = _infer(admin)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 504, answer.text
    assert elapsed < UPSTREAM_TIMEOUT_S + 0.5, f"answered after {elapsed:.2f} s"

    linked_cluster.set_latency("gateway", "worker-1", 0.0)
    assert p50() < base + 0.1
    with pytest.raises(BackendError, match="workers never talk to each other"):
        linked_cluster.set_latency("worker-1", "worker-2", 0.1)


def test_a_restarted_worker_keeps_its_proxy(linked_cluster, admin) -> None:
    before = {c.labels["servingbdd.service"]: c.id for c in _proxy_containers(linked_cluster)}
    old_worker = linked_cluster.service("worker-1").ident
    linked_cluster.restart("worker-1")
    assert linked_cluster.service("worker-1").ident != old_worker, "a new worker container"
    after = {c.labels["servingbdd.service"]: c.id for c in _proxy_containers(linked_cluster)}
    assert after == before, "the same proxy containers serve the restarted worker"
    linked_cluster.partition("gateway", "worker-2")
    _wait(lambda: _names(admin) == {"worker-1"}, timeout=3 * HEARTBEAT_S + 2.0)
    linked_cluster.set_latency("gateway", "worker-1", 0.4)
    started = time.perf_counter()
    assert _infer(admin).status_code == 200
    assert time.perf_counter() - started >= 0.4, "the new container is reached through the proxy"


def test_teardown_removes_the_proxy_containers(tmp_path: Path, make_demo_spec) -> None:
    started = _start(tmp_path, make_demo_spec, workers=1, fault_links=True)
    cluster = next(started)
    assert len(_proxy_containers(cluster)) == 1
    started.close()  # the fixture's finally: teardown

    import docker

    fresh = docker.from_env(timeout=10)
    try:
        left = fresh.containers.list(all=True, filters={"label": f"{LABEL_SCENARIO}={cluster.scenario_id}"})
    finally:
        fresh.close()
    assert left == [], [c.name for c in left]
    assert (tmp_path / "cluster" / "logs" / "link-worker-1.log").read_text(), "the proxy's log is kept"
