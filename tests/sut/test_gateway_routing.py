"""Routing through a real gateway to real worker processes: spread, retry on every holder, 503, 504."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from gateway_fixtures import JOIN, ROW, Cluster, free_port, infer_body, wait_until, worker_available

from sut.demo_models import build_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not worker_available(), reason="sut.worker is not built yet"),
]


def start_cluster(root: Path, workers: int, **gateway_options: object) -> Cluster:
    c = Cluster(root, heartbeat_interval=0.25, expiry_misses=3, **gateway_options)
    build_demo(c.artifact_root, versions=("1", "2"))
    c.start_gateway()
    c.register_version("demo", "demo/1/model.onnx")
    c.register_version("demo", "demo/2/model.onnx", parent_version="1")
    for i in range(workers):
        c.start_worker(f"n{i}")
    c.wait_holders("demo", "1", workers)
    return c


@pytest.fixture
def cluster2(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)  # closed even if start_cluster fails half-way
    try:
        c = start_cluster(tmp_path, 2)
        yield c
    finally:
        c.close()


def expected_output(c: Cluster, version: str, rows: list[list[float]]) -> list[float]:
    session = ort.InferenceSession(str(c.artifact_root / f"demo/{version}/model.onnx"))
    (out,) = session.run(["predict"], {"input": np.asarray(rows, dtype=np.float32)})
    return out.reshape(-1).tolist()


def test_inference_through_the_gateway_is_the_models_answer(cluster2: Cluster) -> None:
    rows = [ROW, [1.0, 1.0, 1.0, 1.0]]
    r = cluster2.infer(body=infer_body(rows))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "demo" and body["model_version"] == "1"
    (out,) = body["outputs"]
    assert out["name"] == "predict" and out["shape"] == [2, 1]
    assert out["data"] == pytest.approx(expected_output(cluster2, "1", rows), rel=1e-5)
    r = cluster2.infer(version="1")
    assert r.status_code == 200 and r.json()["model_version"] == "1"
    # version 2 is in the catalog but no worker holds it
    r = cluster2.infer(version="2")
    assert r.status_code == 503
    assert "'demo'" in r.text and "'2'" in r.text
    meta = cluster2.client.get(cluster2.url + "/v2/models/demo").json()
    assert meta["versions"] == ["1", "2"] and meta["inputs"][0]["name"] == "input"
    assert cluster2.client.get(cluster2.url + "/v2/health/ready").status_code == 200


def test_worker_4xx_answers_are_passed_through(cluster2: Cluster) -> None:
    # valid V2 on its own, so the gateway forwards it; only the model knows it needs 4 columns
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    r = cluster2.infer(body=body)
    assert r.status_code == 400
    assert "shape" in r.json()["error"]
    assert len(cluster2.workers_holding("demo", "1")) == 2  # a client's mistake is not the worker's fault


def test_idle_pooled_connections_do_not_fail_requests(cluster2: Cluster) -> None:
    assert cluster2.infer().status_code == 200
    time.sleep(6.0)  # longer than the workers' keep-alive timeout: pooled connections are gone by now
    assert [cluster2.infer().status_code for _ in range(4)] == [200] * 4
    assert "worker_unhealthy" not in {e["action"] for e in cluster2.get("/admin/audit").json()}


def test_requests_are_spread_over_the_workers(cluster2: Cluster) -> None:
    for _ in range(20):
        assert cluster2.infer().status_code == 200
    served = []
    for w in cluster2.workers:
        text = cluster2.client.get(w.url + "/metrics").text
        lines = [
            ln for ln in text.splitlines() if ln.startswith("sut_requests_total{") and 'status="200"' in ln
        ]
        served.append(sum(float(ln.rsplit(" ", 1)[1]) for ln in lines))
    assert sum(served) == 20
    assert min(served) >= 5, served


def test_killed_worker_costs_no_client_error(cluster2: Cluster) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30.0, trust_env=False) as http:
            while not stop.is_set():
                r = http.post(cluster2.url + "/v2/models/demo/infer", json=infer_body())
                statuses.append(r.status_code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        cluster2.workers[0].kill()
        killed_at = len(statuses)
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(statuses) > killed_at + 10  # traffic went on after the kill
    assert [s for s in statuses if s != 200] == []
    wait_until(
        "the killed worker to leave the registry", lambda: len(cluster2.get("/admin/workers").json()) == 1, 10
    )
    audit = cluster2.get("/admin/audit").json()
    assert {"worker_unhealthy", "worker_expired"} & {e["action"] for e in audit}


def test_every_healthy_holder_is_tried_before_giving_up(tmp_path: Path) -> None:
    """Five registered workers died before the gateway noticed (their ports are closed); one serves.
    A request that meets two or more dead ones first must still be answered by the live one."""
    c = Cluster(tmp_path)
    try:
        c = start_cluster(tmp_path, 1)
        with httpx.Client(timeout=30.0, trust_env=False) as http:
            for _ in range(5):
                dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
                answer = http.post(
                    c.url + "/internal/workers/register",
                    json={"url": dead, "name": "dead", "models": [{"name": "demo", "version": "1"}]},
                    headers=JOIN,
                )
                assert answer.status_code == 200, answer.text
            statuses = [
                http.post(c.url + "/v2/models/demo/infer", json=infer_body()).status_code for _ in range(6)
            ]
        assert statuses == [200] * 6
    finally:
        c.close()


def test_gracefully_stopped_worker_costs_no_client_error(cluster2: Cluster) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30.0, trust_env=False) as http:
            while not stop.is_set():
                statuses.append(
                    http.post(cluster2.url + "/v2/models/demo/infer", json=infer_body()).status_code
                )

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        leaving = cluster2.workers[0]
        leaving.signal(signal.SIGTERM)
        leaving.proc.wait(20)
        stopped_at = len(statuses)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert leaving.proc.returncode == 0
    assert len(statuses) > stopped_at + 10
    assert [s for s in statuses if s != 200] == []
    assert len(cluster2.get("/admin/workers").json()) == 1  # it deregistered: no need to wait for expiry
    assert "worker_deregistered" in {e["action"] for e in cluster2.get("/admin/audit").json()}


def test_no_worker_left_is_503_naming_model_and_version(cluster2: Cluster) -> None:
    for w in cluster2.workers:
        w.kill()
    r = cluster2.infer()
    assert r.status_code == 503
    error = r.json()["error"]
    assert "'demo'" in error and "'1'" in error
    assert "connection failed" in error or "unhealthy" in error
    wait_until("both workers to expire", lambda: cluster2.get("/admin/workers").json() == [], 10)
    r = cluster2.infer()
    assert r.status_code == 503
    assert "no workers are registered" in r.json()["error"]
    assert cluster2.client.get(cluster2.url + "/v2/health/ready").status_code == 503


def test_paused_worker_gives_504_within_the_deadline(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c = start_cluster(tmp_path, 1, upstream_timeout=1.0)
        assert c.infer().status_code == 200
        c.workers[0].signal(signal.SIGSTOP)
        started = time.monotonic()
        r = c.infer()
        took = time.monotonic() - started
        assert r.status_code == 504
        assert "timeout" in r.json()["error"] and "'demo'" in r.json()["error"]
        assert 0.9 <= took < 3.0
    finally:
        c.close()
