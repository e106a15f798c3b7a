"""The gateway's worker registry, driven over HTTP against a real gateway process.

These tests speak the registry protocol themselves (register / heartbeat / deregister), which is
the surface under test; routing tests use real worker processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gateway_fixtures import JOIN, Cluster, wait_until

from sut.demo_models import build_demo

HEARTBEAT = 0.2
MISSES = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("registry"), heartbeat_interval=HEARTBEAT, expiry_misses=MISSES)
    build_demo(c.artifact_root, versions=("1", "2"))
    try:
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        c.register_version("demo", "demo/2/model.onnx", parent_version="1")
        yield c
    finally:
        c.close()


#: worker id -> the worker token its registration answered (heartbeat and deregistration need it)
WORKER_TOKENS: dict[str, str] = {}


def register(c: Cluster, url: str, name: str = "t", models: list | None = None) -> httpx.Response:
    answer = c.client.post(
        c.url + "/internal/workers/register",
        json={"url": url, "name": name, "models": models or []},
        headers=JOIN,
    )
    if answer.status_code == 200:
        WORKER_TOKENS[answer.json()["id"]] = answer.json()["worker_token"]
    return answer


def own(worker_id: str) -> dict[str, str]:
    """The headers of the worker itself: the join token and its own worker token."""
    return {**JOIN, "X-Worker-Token": WORKER_TOKENS.get(worker_id, "unknown")}


def heartbeat(c: Cluster, worker_id: str, models: list | None = None) -> httpx.Response:
    body = {"models": models or [], "memory_used": 0}
    path = f"/internal/workers/{worker_id}/heartbeat"
    return c.client.post(c.url + path, json=body, headers=own(worker_id))


def deregister(c: Cluster, worker_id: str) -> httpx.Response:
    return c.client.delete(c.url + f"/internal/workers/{worker_id}", headers=own(worker_id))


def worker_ids(c: Cluster) -> set[str]:
    return {w["id"] for w in c.get("/admin/workers").json()}


def test_registration_assigns_an_id_and_the_production_version(cluster: Cluster) -> None:
    r = register(cluster, "http://127.0.0.1:9/a")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"].startswith("w-")
    assert body["heartbeat_interval"] == HEARTBEAT
    versions = {v["version"]: v for v in cluster.get("/admin/models/demo/versions").json()}
    assert body["assignments"] == [
        {
            "model": "demo",
            "version": "1",
            "artifact_uri": "demo/1/model.onnx",
            "sha256": versions["1"]["sha256"],
        }
    ]


def test_heartbeat_keeps_a_worker_and_records_its_models(cluster: Cluster) -> None:
    wid = register(cluster, "http://127.0.0.1:9/b").json()["id"]
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT / 2):
            assert heartbeat(cluster, wid, [{"name": "demo", "version": "1"}]).status_code == 200

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        time.sleep(HEARTBEAT * MISSES * 3)  # well past the expiry of a silent worker
        assert wid in worker_ids(cluster)
        (me,) = [w for w in cluster.get("/admin/workers").json() if w["id"] == wid]
        assert me["models"] == [{"name": "demo", "version": "1"}]
        assert me["healthy"] is True
    finally:
        stop.set()
        beater.join()


def test_silent_worker_expires_and_its_heartbeat_then_gets_404(cluster: Cluster) -> None:
    wid = register(cluster, "http://127.0.0.1:9/c").json()["id"]
    assert wid in worker_ids(cluster)
    took = wait_until(f"{wid} to expire", lambda: wid not in worker_ids(cluster), timeout=10.0)
    assert took >= HEARTBEAT * (MISSES - 1)  # not removed before it missed its heartbeats
    r = heartbeat(cluster, wid)
    assert r.status_code == 404
    assert wid in r.json()["error"]

    def audited() -> bool:  # the audit is written off the request path, a moment later
        expired = cluster.get("/admin/audit", params={"action": "worker_expired"}).json()
        return any(e["details"]["worker"] == wid for e in expired)

    wait_until(f"the expiry of {wid} to be audited", audited, timeout=5.0)


def test_heartbeat_from_unknown_id_is_404(cluster: Cluster) -> None:
    r = heartbeat(cluster, "w-999999")
    assert r.status_code == 404
    assert "w-999999" in r.json()["error"]


def test_deregistration_removes_the_worker(cluster: Cluster) -> None:
    wid = register(cluster, "http://127.0.0.1:9/d").json()["id"]
    r = deregister(cluster, wid)
    assert r.status_code == 200, r.text
    assert wid not in worker_ids(cluster)
    assert deregister(cluster, wid).status_code == 404
    assert heartbeat(cluster, wid).status_code == 404


def test_ids_are_never_reused(cluster: Cluster) -> None:
    first = register(cluster, "http://127.0.0.1:9/e").json()["id"]
    deregister(cluster, first)
    second = register(cluster, "http://127.0.0.1:9/e").json()["id"]
    assert first != second


def test_50_concurrent_registrations_get_50_distinct_ids(cluster: Cluster) -> None:
    barrier = threading.Barrier(50)

    def one(i: int) -> str:
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            barrier.wait()
            body = {"url": f"http://127.0.0.1:9/many-{i}", "name": f"many-{i}", "models": []}
            r = client.post(cluster.url + "/internal/workers/register", json=body, headers=JOIN)
            assert r.status_code == 200, r.text
            return r.json()["id"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(one, range(50)))
    assert len(ids) == 50
    assert len(set(ids)) == 50


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"name": "x"}, "url"),
        ({"url": "ftp://x", "name": "x"}, "url"),
        ({"url": "http://127.0.0.1:9", "models": "demo"}, "models"),
        ({"url": "http://127.0.0.1:9", "models": [{"name": "demo"}]}, "version"),
        ([1, 2], "object"),
    ],
)
def test_bad_registration_is_400_saying_what_is_wrong(cluster: Cluster, body: object, complaint: str) -> None:
    r = cluster.client.post(cluster.url + "/internal/workers/register", json=body, headers=JOIN)
    assert r.status_code == 400
    assert complaint in r.json()["error"]


def test_malformed_json_registration_is_400(cluster: Cluster) -> None:
    r = cluster.client.post(cluster.url + "/internal/workers/register", content=b"{not json", headers=JOIN)
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["error"]


def test_ready_needs_a_healthy_worker_serving_a_model(tmp_path: Path) -> None:
    c = Cluster(tmp_path, heartbeat_interval=HEARTBEAT, expiry_misses=MISSES)
    try:
        c.start_gateway()
        assert c.client.get(c.url + "/v2/health/live").status_code == 200
        r = c.client.get(c.url + "/v2/health/ready")
        assert r.status_code == 503
        assert "error" in r.json()
        wid = register(c, "http://127.0.0.1:9/r").json()["id"]
        assert c.client.get(c.url + "/v2/health/ready").status_code == 503  # up, but holds no model
        assert heartbeat(c, wid, [{"name": "demo", "version": "1"}]).status_code == 200
        assert c.client.get(c.url + "/v2/health/ready").status_code == 200
    finally:
        c.close()


def test_registering_again_from_the_same_address_replaces_the_old_entry(cluster: Cluster) -> None:
    url = "http://127.0.0.1:9/restarted"
    first = register(cluster, url).json()["id"]
    second = register(cluster, url).json()["id"]
    assert first != second
    ids = worker_ids(cluster)
    assert second in ids and first not in ids  # the old process at that address is gone
    assert heartbeat(cluster, first).status_code == 404
