"""End-to-end tests of the reference cluster: real gateway and worker processes, real HTTP.

Two clusters per module keep the tests cheap: ``cluster`` (a gateway, three workers and the demo model,
versions 1 and 2) for inference and swaps, and ``registry`` (a gateway with a short heartbeat interval
and no model) for registration and expiry, so that its fake and killed workers never take part in a swap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from sut import launcher
from sut.demo_models import build_demo

pytestmark = pytest.mark.slow

TOKEN = "e2e-admin-token"
JOIN_TOKEN = "e2e-join-token"
JOIN = {"Authorization": f"Bearer {JOIN_TOKEN}"}
MODEL = "demo"
ROWS = [[0.5, -1.0, 2.0, 0.25], [1.0, 1.0, 1.0, 1.0], [-3.0, 0.0, 0.5, 4.0]]
STARTUP_TIMEOUT = 60.0


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.1) -> float:
    """Poll ``check`` until true; return the seconds it took, or fail naming ``what``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


@dataclass
class Service:
    name: str
    role: str
    url: str
    proc: subprocess.Popen
    log: Path


@dataclass
class Cluster:
    """Services started as their own process groups; :meth:`close` stops every one of them."""

    root: Path
    heartbeat_interval: float = 1.0
    expiry_misses: int = 3
    services: list[Service] = field(default_factory=list)
    gateway_url: str = ""

    @property
    def artifact_root(self) -> Path:
        return self.root / "artifacts"

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30.0,
            trust_env=False,
        )

    def start_gateway(self) -> None:
        port = launcher.free_port()
        self.gateway_url = f"http://127.0.0.1:{port}"
        argv = launcher.gateway_command(
            port=port,
            data_dir=self.root / "gateway",
            artifact_root=self.artifact_root,
            heartbeat_interval=self.heartbeat_interval,
            expiry_misses=self.expiry_misses,
        )
        service = self._spawn("gateway", "gateway", self.gateway_url, argv)
        self._wait_alive(service, f"{self.gateway_url}/v2/health/live")

    def start_worker(self, name: str) -> Service:
        port = launcher.free_port()
        url = f"http://127.0.0.1:{port}"
        argv = launcher.worker_command(
            port=port, gateway_url=self.gateway_url, artifact_root=self.artifact_root, name=name
        )
        return self._spawn("worker", name, url, argv)

    def status(self) -> dict:
        with self.admin() as admin:
            resp = admin.get("/admin/status")
        resp.raise_for_status()
        return resp.json()

    def worker_ids(self) -> set[str]:
        return {w["id"] for w in self.status()["workers"]}

    def production(self) -> str:
        (entry,) = [m for m in self.status()["models"] if m["name"] == MODEL]
        return str(entry["aliases"]["production"])

    def assert_running(self) -> bool:
        """Fail at once, with the log's tail, when a service died instead of waiting for a timeout."""
        for service in self.services:
            if service.proc.poll() is not None:
                tail = service.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"{service.name} exited with {service.proc.returncode}:\n{tail}")
        return True

    def close(self) -> None:
        """Workers first (they deregister from a live gateway); one failure does not spare the others."""
        for service in sorted(self.services, key=lambda s: s.role == "gateway"):
            try:
                launcher.stop_process_group(service.proc.pid, grace=5.0)
            finally:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    service.proc.wait(timeout=5)

    def _spawn(self, role: str, name: str, url: str, argv: list[str]) -> Service:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "logs" / f"{name}.log"
        env = launcher.service_env(admin_token=TOKEN, join_token=JOIN_TOKEN)
        service = Service(name, role, url, launcher.spawn_detached(argv, log, env), log)
        self.services.append(service)
        return service

    def _wait_alive(self, service: Service, url: str) -> None:
        def answers() -> bool:
            self.assert_running()
            try:
                return httpx.get(url, timeout=2.0, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(f"{service.name} at {url}", answers, STARTUP_TIMEOUT)


def serving(cluster: Cluster, version: str) -> list[dict]:
    """The healthy workers that report ``demo`` at ``version``."""
    return [
        w
        for w in cluster.status()["workers"]
        if w["healthy"] and {"name": MODEL, "version": version} in _refs(w["models"])
    ]


def _refs(models: list[dict]) -> list[dict]:
    return [{"name": m["name"], "version": str(m["version"])} for m in models]


def infer_body() -> dict:
    flat = [x for row in ROWS for x in row]
    return {"inputs": [{"name": "input", "shape": [len(ROWS), 4], "datatype": "FP32", "data": flat}]}


def expected_prediction(artifact: Path) -> np.ndarray:
    """What the artifact computes, by onnxruntime in this process: the cluster must answer the same."""
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    (out,) = session.run(["predict"], {"input": np.asarray(ROWS, dtype=np.float32)})
    return np.asarray(out, dtype=np.float32).reshape(-1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        build_demo(c.artifact_root, versions=("1", "2"))
        c.start_gateway()
        with c.admin() as admin:
            for version in ("1", "2"):
                body = {"version": version, "artifact_uri": f"{MODEL}/{version}/model.onnx"}
                assert admin.post(f"/admin/models/{MODEL}/versions", json=body).status_code == 201
        for i in range(1, 4):
            c.start_worker(f"worker-{i}")
        wait_until(
            "3 workers serving demo 1",
            lambda: c.assert_running() and len(serving(c, "1")) == 3,
            STARTUP_TIMEOUT,
        )
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("registry"), heartbeat_interval=0.5, expiry_misses=3)
    try:
        c.artifact_root.mkdir(parents=True)
        c.start_gateway()
        yield c
    finally:
        c.close()


# --- inference --------------------------------------------------------------------------------------


def test_health_and_metadata_through_the_gateway(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.gateway_url, timeout=10.0, trust_env=False) as http:
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        assert http.get("/v2").status_code == 200
        version = cluster.production()
        for path in (f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/{version}"):
            meta = http.get(path)
            assert meta.status_code == 200, meta.text
            assert meta.json()["name"] == MODEL
            assert meta.json()["platform"] == "onnxruntime_onnx"
            assert http.get(f"{path}/ready").status_code == 200
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and "sut_workers" in metrics.text
        missing = http.get("/v2/models/no-such-model")
        assert missing.status_code == 404
        assert "error" in missing.json()


def test_infer_on_every_endpoint_matches_the_artifact(cluster: Cluster) -> None:
    version = cluster.production()
    other = "2" if version == "1" else "1"
    want = expected_prediction(cluster.artifact_root / MODEL / version / "model.onnx")
    assert not np.allclose(want, expected_prediction(cluster.artifact_root / MODEL / other / "model.onnx"))
    with httpx.Client(base_url=cluster.gateway_url, timeout=10.0, trust_env=False) as http:
        for path in (f"/v2/models/{MODEL}/infer", f"/v2/models/{MODEL}/versions/{version}/infer"):
            for _ in range(6):  # enough for the router to use every worker
                resp = http.post(path, json={**infer_body(), "id": "req-1"})
                assert resp.status_code == 200, resp.text
                answer = resp.json()
                assert answer["model_name"] == MODEL
                assert answer["model_version"] == version
                assert answer["id"] == "req-1"
                (out,) = answer["outputs"]
                assert out["name"] == "predict" and out["shape"] == [len(ROWS), 1]
                np.testing.assert_allclose(out["data"], want, rtol=1e-5)
        # The version that no worker holds is refused with a reason, not routed anywhere.
        refused = http.post(f"/v2/models/{MODEL}/versions/{other}/infer", json=infer_body())
        assert refused.status_code == 503, refused.text
        assert MODEL in refused.json()["error"] and other in refused.json()["error"]
        bad = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [{"name": "input"}]})
        assert 400 <= bad.status_code < 500 and "error" in bad.json()


def test_each_worker_answers_like_the_gateway(cluster: Cluster) -> None:
    version = cluster.production()
    want = expected_prediction(cluster.artifact_root / MODEL / version / "model.onnx")
    workers = [s for s in cluster.services if s.role == "worker"]
    assert len(workers) == 3
    for worker in workers:
        resp = httpx.post(
            f"{worker.url}/v2/models/{MODEL}/versions/{version}/infer",
            json=infer_body(),
            timeout=10,
            trust_env=False,
        )
        assert resp.status_code == 200, f"{worker.name}: {resp.text}"
        np.testing.assert_allclose(resp.json()["outputs"][0]["data"], want, rtol=1e-5)


# --- worker registry --------------------------------------------------------------------------------


def test_fifty_concurrent_registrations_get_distinct_ids(registry: Cluster) -> None:
    count = 50
    barrier = threading.Barrier(count)
    answers: list[httpx.Response | BaseException] = [RuntimeError("not run")] * count

    def register(i: int) -> None:
        body = {"url": f"http://127.0.0.1:9/fake-{i}", "name": f"fake-{i}", "models": []}
        try:
            with httpx.Client(base_url=registry.gateway_url, timeout=30.0, trust_env=False) as http:
                barrier.wait(timeout=30)
                answers[i] = http.post("/internal/workers/register", json=body, headers=JOIN)
        except BaseException as exc:
            answers[i] = exc

    threads = [threading.Thread(target=register, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    failed = [a for a in answers if not isinstance(a, httpx.Response) or a.status_code not in (200, 201)]
    assert not failed, failed[:3]
    ids = [a.json()["id"] for a in answers if isinstance(a, httpx.Response)]
    assert len(set(ids)) == count
    assert all(a.json()["heartbeat_interval"] == pytest.approx(0.5) for a in answers)  # type: ignore[union-attr]
    # Nobody heartbeats for them: they all expire.
    budget = registry.heartbeat_interval * registry.expiry_misses
    wait_until("the fake workers to expire", lambda: not (set(ids) & registry.worker_ids()), budget + 5.0)


def test_killed_worker_disappears_within_the_expiry(registry: Cluster) -> None:
    worker = registry.start_worker("doomed")
    wait_until(
        "the worker to register", lambda: worker.url in {w["url"] for w in registry.status()["workers"]}, 30
    )
    (entry,) = [w for w in registry.status()["workers"] if w["url"] == worker.url]
    os.killpg(worker.proc.pid, signal.SIGKILL)  # no deregistration, no goodbye
    killed_at = time.monotonic()
    worker.proc.wait(timeout=5)
    budget = registry.heartbeat_interval * registry.expiry_misses
    wait_until(
        "the killed worker to leave the registry",
        lambda: entry["id"] not in registry.worker_ids(),
        budget + 5.0,
    )
    elapsed = time.monotonic() - killed_at
    # Its last heartbeat was at most one interval before the kill: it must not go before
    # (misses - 1) intervals, and must be gone after the budget plus one sweep of slack.
    interval = registry.heartbeat_interval
    assert elapsed >= budget - interval - 0.1, f"removed after {elapsed:.2f} s, before the expiry"
    assert elapsed <= budget + interval + 0.5, f"removed after {elapsed:.2f} s (budget {budget} s)"


# --- hot swap and rollback --------------------------------------------------------------------------


@dataclass
class Sample:
    start: float
    end: float
    status: int
    version: str | None


def run_clients(url: str, clients: int, stop: threading.Event) -> tuple[list[Sample], list[threading.Thread]]:
    samples: list[Sample] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=30.0, trust_env=False) as http:
            while not stop.is_set():
                start = time.monotonic()
                try:
                    resp = http.post(url, json=infer_body())
                    status = resp.status_code
                    version = resp.json().get("model_version") if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                with lock:
                    samples.append(Sample(start, time.monotonic(), status, version))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    return samples, threads


def test_swap_under_load_has_no_failed_request(cluster: Cluster) -> None:
    old = cluster.production()
    new = "2" if old == "1" else "1"
    stop = threading.Event()
    samples, threads = run_clients(f"{cluster.gateway_url}/v2/models/{MODEL}/infer", 8, stop)
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        with cluster.admin() as admin:
            resp = admin.post(f"/admin/models/{MODEL}/swap", json={"version": new})
        t1 = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["from_version"] == old and resp.json()["to_version"] == new
    failed = [s for s in samples if s.status != 200]
    assert not failed, f"{len(failed)} of {len(samples)} requests failed, e.g. {failed[:3]}"
    before = {s.version for s in samples if s.end < t0}
    during = {s.version for s in samples if s.start <= t1 and s.end >= t0}
    after = {s.version for s in samples if s.start > t1}
    assert before == {old}
    assert during == {old, new}, f"answered during the swap: {during} ({t1 - t0:.3f} s)"
    assert after == {new}
    assert cluster.production() == new
    # The old version is released on every worker; the new one is loaded on every worker.
    assert len(serving(cluster, new)) == 3 and not serving(cluster, old)


def test_failed_swap_leaves_the_old_version_serving(cluster: Cluster) -> None:
    old = cluster.production()
    corrupt = cluster.artifact_root / MODEL / "3" / "model.onnx"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"this is not an onnx model" * 100)
    with cluster.admin() as admin:
        reg = admin.post(
            f"/admin/models/{MODEL}/versions", json={"version": "3", "artifact_uri": f"{MODEL}/3/model.onnx"}
        )
        assert reg.status_code == 201, reg.text
        resp = admin.post(f"/admin/models/{MODEL}/swap", json={"version": "3"})
    assert resp.status_code >= 400, resp.text
    message = resp.json()["error"]
    worker_refs = {w["id"] for w in cluster.status()["workers"]} | {s.url for s in cluster.services}
    assert any(ref in message for ref in worker_refs), f"the error names no worker: {message}"
    assert cluster.production() == old
    assert len(serving(cluster, old)) == 3 and not serving(cluster, "3")
    infer = httpx.post(
        f"{cluster.gateway_url}/v2/models/{MODEL}/infer", json=infer_body(), timeout=10, trust_env=False
    )
    assert infer.status_code == 200 and infer.json()["model_version"] == old


def test_rollback_returns_to_the_previous_version(cluster: Cluster) -> None:
    first = cluster.production()
    second = "2" if first == "1" else "1"
    with cluster.admin() as admin:
        assert admin.post(f"/admin/models/{MODEL}/swap", json={"version": second}).status_code == 200
        resp = admin.post(f"/admin/models/{MODEL}/rollback")
    assert resp.status_code == 200, resp.text
    assert resp.json()["from_version"] == second and resp.json()["to_version"] == first
    assert cluster.production() == first
    infer = httpx.post(
        f"{cluster.gateway_url}/v2/models/{MODEL}/infer", json=infer_body(), timeout=10, trust_env=False
    )
    assert infer.status_code == 200 and infer.json()["model_version"] == first
    with cluster.admin() as admin:
        audit = admin.get("/admin/audit").json()
    assert any(e["action"] == "rollback" and e["model"] == MODEL for e in audit)
