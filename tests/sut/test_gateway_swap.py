"""Swap and rollback through the admin API of a real gateway with real workers, under load."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from gateway_fixtures import Cluster, infer_body, wait_until, worker_available

from sut.demo_models import build_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not worker_available(), reason="sut.worker is not built yet"),
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, heartbeat_interval=0.25, expiry_misses=3)
    try:
        build_demo(c.artifact_root, versions=("1", "2"))
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        c.register_version("demo", "demo/2/model.onnx", parent_version="1")
        c.start_worker("a")
        c.start_worker("b")
        c.wait_holders("demo", "1", 2)
        yield c
    finally:
        c.close()


@dataclass
class Sample:
    started: float
    ended: float
    status: int
    version: str | None


class Load:
    """Client threads sending inference requests non-stop, recording every answer."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=30.0, trust_env=False) as http:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = http.post(self.url + "/v2/models/demo/infer", json=infer_body())
                    status = r.status_code
                    version = r.json().get("model_version") if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                self.samples.append(Sample(t0, time.monotonic(), status, version))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def production(c: Cluster) -> str:
    (model,) = c.get("/admin/models").json()
    return model["aliases"]["production"]


def test_swap_under_load_loses_no_request(cluster: Cluster) -> None:
    with Load(cluster.url, threads=8) as load:
        time.sleep(1.0)
        swap_started = time.monotonic()
        r = cluster.post("/admin/models/demo/swap", {"version": "2"})
        swap_ended = time.monotonic()
        assert r.status_code == 200, r.text
        time.sleep(1.0)
    answer = r.json()
    assert answer["model"] == "demo" and answer["from_version"] == "1" and answer["to_version"] == "2"
    assert answer["duration_s"] >= 0
    failed = [s for s in load.samples if s.status != 200]
    assert failed == [], f"{len(failed)} of {len(load.samples)} requests failed: {failed[:5]}"
    during = {s.version for s in load.samples if s.started < swap_ended and s.ended > swap_started}
    before = {s.version for s in load.samples if s.ended < swap_started}
    after = [s.version for s in load.samples if s.started > swap_ended]
    assert before == {"1"}
    assert {"1", "2"} <= {s.version for s in load.samples}
    assert during, "no request overlapped the swap"
    assert len(after) > 20 and set(after) == {"2"}
    assert production(cluster) == "2"
    cluster.wait_holders("demo", "1", 0, timeout=10)  # the old version was unloaded everywhere
    assert len(cluster.workers_holding("demo", "2")) == 2
    swaps = cluster.get("/admin/audit", params={"action": "swap"}).json()
    assert swaps[-1]["details"]["from_version"] == "1" and swaps[-1]["details"]["to_version"] == "2"


def test_rollback_returns_to_the_previous_version(cluster: Cluster) -> None:
    r = cluster.post("/admin/models/demo/rollback")
    assert r.status_code == 409  # nothing to roll back to yet
    assert "previous" in r.json()["error"]
    assert cluster.post("/admin/models/demo/swap", {"version": "2"}).status_code == 200
    assert cluster.infer().json()["model_version"] == "2"
    started = time.monotonic()
    r = cluster.post("/admin/models/demo/rollback")
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 30
    assert (r.json()["from_version"], r.json()["to_version"]) == ("2", "1")
    assert production(cluster) == "1"
    assert {cluster.infer().json()["model_version"] for _ in range(6)} == {"1"}
    assert [e["action"] for e in cluster.get("/admin/audit", params={"model": "demo"}).json()][
        -1
    ] == "rollback"


def test_swap_to_a_corrupt_artifact_keeps_the_old_version_serving(cluster: Cluster) -> None:
    bad = cluster.artifact_root / "demo/3/model.onnx"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not an onnx model" * 10)
    cluster.register_version("demo", "demo/3/model.onnx", parent_version="2")
    r = cluster.post("/admin/models/demo/swap", {"version": "3"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert "w-" in error and "production stays at '1'" in error
    assert production(cluster) == "1"
    assert cluster.workers_holding("demo", "3") == []
    assert {cluster.infer().json()["model_version"] for _ in range(4)} == {"1"}
    (failure,) = cluster.get("/admin/audit", params={"action": "swap_failed"}).json()
    assert failure["details"]["to_version"] == "3" and len(failure["details"]["failures"]) == 2


def test_swap_to_a_missing_artifact_keeps_the_old_version_serving(cluster: Cluster) -> None:
    build_demo(cluster.artifact_root, versions=("4",))
    cluster.register_version("demo", "demo/4/model.onnx", version="4")
    (cluster.artifact_root / "demo/4/model.onnx").unlink()
    r = cluster.post("/admin/models/demo/swap", {"version": "4"})
    assert r.status_code == 404, r.text
    assert "demo/4/model.onnx" in r.json()["error"] and "w-" in r.json()["error"]
    assert production(cluster) == "1"
    assert cluster.infer().json()["model_version"] == "1"


def test_swap_refuses_bad_requests(cluster: Cluster) -> None:
    assert cluster.post("/admin/models/demo/swap", {}).status_code == 400
    assert cluster.post("/admin/models/demo/swap", {"version": "9"}).status_code == 404
    assert cluster.post("/admin/models/demo/swap", {"version": ["1"]}).status_code == 400
    r = cluster.post("/admin/models/demo/swap", {"version": "1"})
    assert r.status_code == 200 and r.json()["note"] == "already the production version"


def test_worker_joining_after_a_swap_gets_the_new_version(cluster: Cluster) -> None:
    assert cluster.post("/admin/models/demo/swap", {"version": "2"}).status_code == 200
    cluster.start_worker("late")
    cluster.wait_holders("demo", "2", 3)
    wait_until("a heartbeat", lambda: len(cluster.get("/admin/workers").json()) == 3, 5)
    assert cluster.workers_holding("demo", "1") == []


def test_swap_failing_on_one_worker_is_undone_on_the_others(tmp_path: Path) -> None:
    c = Cluster(tmp_path, heartbeat_interval=0.25, expiry_misses=3)
    try:
        arts = build_demo(c.artifact_root, versions=("1", "2"))
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        c.register_version("demo", "demo/2/model.onnx", parent_version="1")
        c.start_worker("roomy")
        small = c.start_worker(
            "small", memory_budget=arts["1"].size_bytes + 10
        )  # no room for a second version
        c.wait_holders("demo", "1", 2)
        r = c.post("/admin/models/demo/swap", {"version": "2"})
        assert r.status_code == 507, r.text
        (small_id,) = [w["id"] for w in c.get("/admin/workers").json() if w["name"] == "small"]
        assert small_id in r.json()["error"] and "budget" in r.json()["error"]
        assert production(c) == "1"
        for w in c.workers:  # the worker that had room unloaded version 2 again
            models = c.client.get(w.url + "/worker/status").json()["models"]
            assert [(m["name"], m["version"]) for m in models] == [("demo", "1")], (w.url, models)
        assert small.alive()
        assert {c.infer().json()["model_version"] for _ in range(4)} == {"1"}
        (failure,) = c.get("/admin/audit", params={"action": "swap_failed"}).json()
        assert [f["worker"] for f in failure["details"]["failures"]] == [small_id]
        assert len(failure["details"]["undone_on"]) == 1
        text = c.client.get(c.url + "/metrics").text
        assert f'sut_memory_bytes{{model="demo",version="1"}} {2 * arts["1"].size_bytes}.0' in text
    finally:
        c.close()


def test_a_worker_lost_during_a_swap_does_not_hold_it_up(cluster: Cluster) -> None:
    """A frozen worker (SIGSTOP: its load hangs, its heartbeats stop, as behind a partition) leaves the
    registry after 3 missed heartbeats; the swap goes on with the others instead of waiting for the
    load deadline (30 s) and undoing itself, and names the lost worker in its answer and audit."""
    frozen = cluster.workers[1]
    (frozen_id,) = [w["id"] for w in cluster.get("/admin/workers").json() if w["name"] == "b"]
    frozen.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = cluster.post("/admin/models/demo/swap", {"version": "2"})
        took = time.monotonic() - started
    finally:
        frozen.signal(signal.SIGCONT)
    assert r.status_code == 200, r.text
    assert took < 5.0, f"the swap waited {took:.1f} s for a worker that had left the registry"
    assert [entry["worker"] for entry in r.json()["lost"]] == [frozen_id], r.json()
    assert r.json()["lost"][0]["name"] == "b"
    assert production(cluster) == "2"
    assert {cluster.infer().json()["model_version"] for _ in range(4)} == {"2"}
    (entry,) = cluster.get("/admin/audit", params={"action": "swap"}).json()
    assert [lost["worker"] for lost in entry["details"]["lost"]] == [frozen_id]
    # back from the freeze it registers again and is assigned the production version
    cluster.wait_holders("demo", "2", 2, timeout=30.0)


def test_a_killed_worker_fails_the_swap_fast_naming_it(cluster: Cluster) -> None:
    """A worker that died but is still registered refuses the load's connection: the swap fails at once
    (it may be the new version that kills workers), naming the worker as its operator named it."""
    (dead_id,) = [w["id"] for w in cluster.get("/admin/workers").json() if w["name"] == "b"]
    cluster.workers[1].kill()
    started = time.monotonic()
    r = cluster.post("/admin/models/demo/swap", {"version": "2"})
    took = time.monotonic() - started
    assert r.status_code == 502, r.text
    assert took < 5.0, f"the refusal took {took:.1f} s"
    assert f"worker b (id {dead_id}, " in r.json()["error"], r.json()
    assert production(cluster) == "1"
