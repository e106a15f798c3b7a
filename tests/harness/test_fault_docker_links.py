"""Partition and heal on the docker backend (a worker's container leaves and rejoins the network).

``harness/backends/docker.py`` mixes ``DockerLinkFaults`` in. Skipped, with the reason, when no Docker
engine or base image is available.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from harness.backends.base import BackendError
from harness.backends.docker import DockerBackend
from harness.faults.docker_links import DockerLinkFaults

HEARTBEAT_S = 0.5


@pytest.fixture
def docker_cluster(tmp_path: Path, make_demo_spec):
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
    backend = DockerBackend(tmp_path / "cluster")
    try:
        backend.start(make_demo_spec(workers=2, heartbeat_interval=HEARTBEAT_S, upstream_timeout=1.0))
        yield backend
    finally:
        backend.teardown()


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


def test_partition_and_heal_a_worker_container(docker_cluster) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]}
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
