"""The worker as a real subprocess over real HTTP: V2 inference, repository API, hot-swap, budget, drain."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from harness import waiting
from sut import launcher
from sut.demo_models import build_large_model, rows_for
from sut.token_source import write_token_file

ROWS = np.array([[0.5, -1.0, 2.0, 3.5], [1.0, 2.0, 3.0, 4.0], [-2.0, 0.0, 0.25, 1.0]], dtype=np.float32)


def infer_body(rows: np.ndarray, request_id: str | None = None) -> dict:
    body: dict = {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                              "data": rows.reshape(-1).tolist()}]}  # fmt: skip
    if request_id is not None:
        body["id"] = request_id
    return body


def expected(artifact_path, rows: np.ndarray) -> list[float]:
    """What onnxruntime itself answers for the artifact, in this process."""
    session = ort.InferenceSession(str(artifact_path), providers=["CPUExecutionProvider"])
    return session.run(["predict"], {"input": rows})[0].reshape(-1).tolist()


def load(client: httpx.Client, model: str, version: str, uri: str | None = None, **extra) -> httpx.Response:
    params = {"version": version, "artifact_uri": uri or f"{model}/{version}/model.onnx", **extra}
    return client.post(f"/v2/repository/models/{model}/load", json={"parameters": params})


def load_ok(client: httpx.Client, model: str, version: str, uri: str | None = None) -> dict:
    response = load(client, model, version, uri)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert "Traceback" not in body["error"]
    return body["error"]


@pytest.fixture
def worker(worker_start):
    return worker_start()


@pytest.fixture
def client(worker):
    with worker.client() as c:
        yield c


def test_infer_with_and_without_version_and_versions_differ(client, worker_artifacts):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 503  # nothing loaded yet
    load_ok(client, "demo", "1")
    load_ok(client, "demo", "2")
    assert client.get("/v2/health/ready").status_code == 200

    answers = {}
    for version in ("1", "2"):
        response = client.post(
            f"/v2/models/demo/versions/{version}/infer", json=infer_body(ROWS, f"req-{version}")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("demo", version, f"req-{version}")
        [out] = body["outputs"]
        assert (out["name"], out["shape"], out["datatype"]) == ("predict", [3, 1], "FP32")
        assert out["data"] == pytest.approx(expected(worker_artifacts.demo[version].path, ROWS), rel=1e-6)
        answers[version] = out["data"]
    assert all(abs(a - b) > 1e-3 for a, b in zip(answers["1"], answers["2"], strict=True))

    default = client.post("/v2/models/demo/infer", json=infer_body(ROWS))
    assert default.status_code == 200
    assert default.json()["model_version"] == "2"  # newest loaded
    assert default.json()["outputs"][0]["data"] == answers["2"]
    assert default.json()["id"]  # generated when the request has none

    nested = {"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": ROWS.tolist()}]}
    assert (
        client.post("/v2/models/demo/versions/1/infer", json=nested).json()["outputs"][0]["data"]
        == answers["1"]
    )


def test_metadata_endpoints(client):
    assert client.get("/v2/models/demo").status_code == 404
    load_ok(client, "demo", "1")
    load_ok(client, "demo", "3")
    meta = client.get("/v2/models/demo").json()
    assert meta == {
        "name": "demo",
        "versions": ["1", "3"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "FP32", "shape": [-1, 1]}],
    }
    assert client.get("/v2/models/demo/versions/3").json()["versions"] == ["3"]
    assert client.get("/v2/models/demo/ready").json() == {"name": "demo", "version": "3", "ready": True}
    assert client.get("/v2/models/demo/versions/1/ready").status_code == 200
    assert client.get("/v2/models/demo/versions/2/ready").status_code == 404
    assert "model_repository" in client.get("/v2").json()["extensions"]
    index = client.post("/v2/repository/index").json()
    assert [(r["name"], r["version"], r["state"]) for r in index] == [
        ("demo", "1", "READY"),
        ("demo", "3", "READY"),
    ]


def one_row(**overrides) -> dict:
    tensor = {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1.0] * 4}
    return {"inputs": [{**tensor, **overrides}]}


BAD_INPUTS = [
    ("malformed JSON", b'{"inputs": [', "malformed JSON"),
    ("not an object", b"[1, 2]", "JSON object"),
    ("no inputs", b'{"id": "x"}', "'inputs'"),
    ("wrong shape", infer_body(ROWS[:, :3]), "expects [-1, 4]"),
    ("shape vs data", one_row(shape=[2, 4], data=[1.0] * 7), "needs 8 values but 'data' has 7"),
    ("wrong datatype", one_row(datatype="INT64", data=[1, 2, 3, 4]),
     "has datatype INT64 but model 'demo' version '1' expects FP32"),
    ("unknown datatype", one_row(datatype="FLOAT"), "unsupported datatype 'FLOAT'"),
    ("strings as data", one_row(data=["a"] * 4), "only numbers"),
    ("wrong input name", one_row(name="x"), "has no input named 'x'"),
]  # fmt: skip


@pytest.fixture(scope="module")
def shared_client(worker_shared):
    with worker_shared.client() as c:
        load_ok(c, "demo", "1")
        yield c


@pytest.mark.parametrize(("case", "body", "says"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_4xx_with_a_useful_message(shared_client, case, body, says):
    client = shared_client
    if isinstance(body, bytes):
        response = client.post("/v2/models/demo/versions/1/infer", content=body)
    else:
        response = client.post("/v2/models/demo/versions/1/infer", json=body)
    assert response.status_code == 400, response.text
    assert says in error_of(response)


def test_unknown_model_or_version_is_404(shared_client):
    client = shared_client
    response = client.post("/v2/models/nope/infer", json=infer_body(ROWS))
    assert response.status_code == 404
    assert "model 'nope' is not loaded" in error_of(response)
    response = client.post("/v2/models/demo/versions/7/infer", json=infer_body(ROWS))
    assert response.status_code == 404
    assert "version '7' is not loaded" in error_of(response) and "loaded: 1" in error_of(response)
    assert client.get("/no/such/route").status_code == 404
    assert "error" in client.get("/no/such/route").json()


def test_oversized_body_is_413(worker_start):
    small = worker_start("--max-body-bytes", "20000")
    big_rows = np.ones((2000, 4), dtype=np.float32)  # ~ 30 kB of JSON
    with small.client() as c:
        load_ok(c, "demo", "1")
        response = c.post("/v2/models/demo/infer", json=infer_body(big_rows))
        assert response.status_code == 413
        assert "exceeds the limit of 20000 bytes" in error_of(response)

        def chunks():  # no Content-Length: the limit is enforced while reading
            payload = httpx.Request("POST", "http://x", json=infer_body(big_rows)).read()
            for i in range(0, len(payload), 4096):
                yield payload[i : i + 4096]

        response = c.post("/v2/models/demo/infer", content=chunks())
        assert response.status_code == 413
        assert "exceeds the limit" in error_of(response)
        assert c.post("/v2/models/demo/infer", json=infer_body(ROWS)).status_code == 200


def test_default_body_limit_is_16_mib(shared_client):
    response = shared_client.post("/v2/models/demo/infer", content=b" " * (16 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert f"limit of {16 * 1024 * 1024} bytes" in error_of(response)


def test_hot_swap_under_load_has_no_failed_request(client, worker):
    """8 threads infer non-stop on the default version while v2 is loaded and v1 unloaded."""
    load_ok(client, "demo", "1")
    stop = threading.Event()
    seen: list[list[str]] = [[] for _ in range(8)]
    failures: list[str] = []

    def hammer(slot: int) -> None:
        with worker.client(timeout=10.0) as c:
            while not stop.is_set():
                try:
                    response = c.post("/v2/models/demo/infer", json=infer_body(ROWS))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    seen[slot].append(response.json()["model_version"])

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        # every thread has been answered by v1 before the swap starts (the asserts below tell if not)
        waiting.poll(lambda: all(len(s) >= 3 for s in seen), bool, timeout=30, interval=0.05)
        load_ok(client, "demo", "2")
        time.sleep(0.5)
        unload = client.post("/v2/repository/models/demo/unload", json={"parameters": {"version": "1"}})
        assert unload.status_code == 200, unload.text
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    total = sum(len(s) for s in seen)
    assert total >= 50, f"only {total} requests made: the test did not put the swap under load"
    for answers in seen:
        assert "1" in answers and "2" in answers
        first_v2 = answers.index("2")
        assert set(answers[first_v2:]) == {"2"}, "a thread got v1 after it had got v2"
        assert set(answers[:first_v2]) == {"1"}


@pytest.mark.parametrize(
    ("model", "uri", "extra", "status", "says"),
    [
        ("demo", "demo/9/model.onnx", {}, 404, "artifact 'demo/9/model.onnx' not found"),
        ("demo", "corrupt/1/model.onnx", {}, 422, "is not a valid ONNX model"),
        ("demo", "demo/2/model.onnx", {"sha256": "0" * 64}, 422, "sha256 mismatch"),
        ("demo", "../outside.onnx", {}, 400, "relative path inside the artifact root"),
    ],
    ids=["missing", "corrupt", "sha-mismatch", "escaping-path"],
)
def test_failed_load_leaves_serving_versions_untouched(
    client, worker_artifacts, model, uri, extra, status, says
):
    load_ok(client, "demo", "1")
    before = client.post("/v2/models/demo/infer", json=infer_body(ROWS)).json()["outputs"]
    for version in ("1", "2"):  # replacing the serving version, and adding a new one
        response = load(client, model, version, uri, **extra)
        assert response.status_code == status, response.text
        message = error_of(response)
        assert f"model 'demo' version '{version}'" in message and says in message
        answer = client.post("/v2/models/demo/infer", json=infer_body(ROWS)).json()
        assert answer["model_version"] == "1" and answer["outputs"] == before
    status_body = client.get("/worker/status").json()
    assert [(m["name"], m["version"]) for m in status_body["models"]] == [("demo", "1")]
    assert status_body["models"][0]["sha256"] == worker_artifacts.demo["1"].sha256
    index = {r["version"]: r for r in client.post("/v2/repository/index").json()}
    assert index["1"]["state"] == "READY"
    assert index["2"]["state"] == "UNAVAILABLE" and says in index["2"]["reason"]


def test_load_is_idempotent_and_verifies_a_correct_sha(client, worker_artifacts):
    sha = worker_artifacts.demo["1"].sha256
    first = load(client, "demo", "1", sha256=sha)
    assert first.status_code == 200 and first.json()["already_loaded"] is False
    again = load(client, "demo", "1", sha256=sha)
    assert again.status_code == 200 and again.json()["already_loaded"] is True


def test_memory_budget_refuses_with_507(worker_start, worker_artifacts):
    v1, v2 = worker_artifacts.demo["1"], worker_artifacts.demo["2"]
    budget = v1.size_bytes + v2.size_bytes - 1
    w = worker_start("--memory-budget", str(budget))
    with w.client() as c:
        load_ok(c, "demo", "1")
        response = load(c, "demo", "2")
        assert response.status_code == 507
        message = error_of(response)
        assert "model 'demo' version '2'" in message
        assert f"needs {v2.size_bytes} bytes" in message and f"memory budget is {budget} bytes" in message
        status = c.get("/worker/status").json()
        assert (status["memory_budget"], status["memory_used"]) == (budget, v1.size_bytes)
        assert [(m["version"], m["size_bytes"]) for m in status["models"]] == [("1", v1.size_bytes)]
        metrics = c.get("/metrics").text
        assert f'sut_memory_bytes{{model="demo",version="1"}} {float(v1.size_bytes)}' in metrics
        assert 'version="2"' not in metrics.split("sut_memory_bytes", 1)[1]
        # after unloading v1 the budget has room for v2
        assert (
            c.post("/v2/repository/models/demo/unload", json={"parameters": {"version": "1"}}).status_code
            == 200
        )
        load_ok(c, "demo", "2")


def slow_rows(client: httpx.Client, seconds: float) -> np.ndarray:
    """A batch that keeps the slow model busy for about ``seconds`` on this machine."""
    probe = np.random.default_rng(0).random((300, 4), dtype=np.float32)
    started = time.perf_counter()
    assert client.post("/v2/models/slow/infer", json=infer_body(probe)).status_code == 200
    n = rows_for(seconds, time.perf_counter() - started, len(probe))
    return np.random.default_rng(1).random((n, 4), dtype=np.float32)


def start_in_background(worker, rows: np.ndarray) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        with worker.client(timeout=120.0) as c:
            try:
                response = c.post("/v2/models/slow/infer", json=infer_body(rows))
                result["status"], result["body"] = response.status_code, response.json()
            except (httpx.HTTPError, ValueError) as exc:
                result["error"] = repr(exc)
            result["done_at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_in_flight(client: httpx.Client, model: str, timeout: float = 30.0) -> None:
    waiting.until(
        lambda: client.get("/worker/status").json()["models"],
        lambda models: any(m["name"] == model and m["in_flight"] > 0 for m in models),
        timeout=timeout,
        what=f"a request in flight on {model}",
        interval=0.02,
        seen=repr,
    )


def test_unload_waits_for_in_flight_request(client, worker):
    load_ok(client, "slow", "1")
    rows = slow_rows(client, 2.0)
    thread, result = start_in_background(worker, rows)
    wait_in_flight(client, "slow")

    started = time.perf_counter()  # the event loop stays free while inference runs in a thread
    assert client.get("/v2/health/live").status_code == 200
    assert time.perf_counter() - started < 0.5

    unload = client.post("/v2/repository/models/slow/unload", json={"parameters": {"version": "1"}})
    unloaded_at = time.monotonic()
    thread.join(timeout=120)
    assert unload.status_code == 200, unload.text
    assert result.get("status") == 200, result
    assert result["body"]["outputs"][0]["shape"] == [len(rows), 1]
    assert unloaded_at >= result["done_at"] - 0.05, "unload answered before the in-flight request finished"
    assert unload.json()["waited_s"] > 0.2
    assert client.post("/v2/models/slow/infer", json=infer_body(ROWS)).status_code == 404


def test_sigterm_drains_in_flight_request_and_exits_0(worker_start):
    w = worker_start("--grace-period", "60")
    with w.client() as c:
        load_ok(c, "slow", "1")
        rows = slow_rows(c, 2.5)
        thread, result = start_in_background(w, rows)
        wait_in_flight(c, "slow")
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        refused = c.post("/v2/models/slow/infer", json=infer_body(ROWS))
        assert refused.status_code == 503
        assert "draining" in error_of(refused)
        assert c.get("/v2/health/ready").status_code == 503
        assert c.get("/worker/status").json()["draining"] is True
    thread.join(timeout=120)
    assert result.get("status") == 200, result
    assert w.proc.wait(timeout=30) == 0
    assert "drained: all in-flight requests finished" in w.log()


def test_runs_while_its_gateway_is_unreachable(worker_start):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    w = worker_start("--gateway", dead, "--name", "lonely")
    with w.client() as c:
        load_ok(c, "demo", "1")
        assert c.post("/v2/models/demo/infer", json=infer_body(ROWS)).status_code == 200
        assert c.get("/worker/status").json()["name"] == "lonely"
    time.sleep(0.5)
    assert "registration with" in w.log() and "failed" in w.log()
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(timeout=30) == 0


GATEWAY_MAIN = Path(__file__).resolve().parents[2] / "sut" / "gateway" / "__main__.py"


def wait_for(what: str, check, timeout: float = 30.0):
    return waiting.until(check, timeout=timeout, what=what, interval=0.1)


@pytest.fixture
def real_gateway(worker_artifacts, tmp_path):
    """The real gateway (``python -m sut.gateway``); ``start()`` (re)starts it on the same port and data."""
    if not GATEWAY_MAIN.exists():
        pytest.skip("sut.gateway is not built yet")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs: list[subprocess.Popen] = []
    url = f"http://127.0.0.1:{port}"
    argv = launcher.gateway_command(
        port=port, data_dir=tmp_path / "gateway", artifact_root=worker_artifacts.root
    )
    env = {**os.environ, **launcher.service_env(admin_token="t0ken")}
    join_file = write_token_file(tmp_path / "secrets" / "join_token", "j0in")  # the worker reads it too
    argv += ["--join-token-file", str(join_file)]

    def start() -> str:
        with (tmp_path / "gateway.log").open("ab") as log:
            procs.append(subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True, env=env))

        def live() -> bool:
            try:
                return httpx.get(url + "/v2/health/live", timeout=1.0, trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the gateway to answer", live)
        return url

    def stop() -> None:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    yield SimpleNamespace(
        start=start, stop=stop, url=url, admin={"Authorization": "Bearer t0ken"}, join_file=join_file
    )
    stop()


def test_registers_loads_assignments_heartbeats_and_deregisters(real_gateway, worker_start):
    url = real_gateway.start()
    gw = httpx.Client(base_url=url, headers=real_gateway.admin, timeout=30.0, trust_env=False)
    created = gw.post("/admin/models/demo/versions", json={"artifact_uri": "demo/1/model.onnx"})
    assert created.status_code == 201, created.text
    w = worker_start(
        "--gateway", real_gateway.url, "--name", "reg-test", "--join-token-file", str(real_gateway.join_file)
    )

    def listed() -> dict | None:
        mine = [x for x in gw.get("/admin/workers").json() if x["name"] == "reg-test"]
        return mine[0] if mine and {"name": "demo", "version": "1"} in mine[0]["models"] else None

    entry = wait_for("the worker to register and report its assignment", listed)
    assert entry["url"] == w.url
    with w.client() as c:
        status = c.get("/worker/status").json()
        assert status["worker_id"] == entry["id"]
        assert [(m["name"], m["version"]) for m in status["models"]] == [("demo", "1")]
    answer = gw.post("/v2/models/demo/infer", json=infer_body(ROWS))
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"

    # The gateway restarts and forgets its workers: the next heartbeat gets 404, the worker registers again.
    real_gateway.stop()
    real_gateway.start()
    entry = wait_for("the worker to register again", listed)
    assert "registering again" in w.log()

    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(timeout=30) == 0
    assert all(x["id"] != entry["id"] for x in gw.get("/admin/workers").json())
    audit = gw.get("/admin/audit").json()
    assert any(a["action"] == "worker_deregistered" and a["details"]["worker"] == entry["id"] for a in audit)
    gw.close()


def test_sigterm_exits_0_when_the_grace_period_ends_first(worker_start):
    w = worker_start("--grace-period", "1")
    with w.client() as c:
        load_ok(c, "slow", "1")
        rows = slow_rows(c, 8.0)
        thread, result = start_in_background(w, rows)
        wait_in_flight(c, "slow")
    signalled = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(timeout=30) == 0
    took = time.monotonic() - signalled
    thread.join(timeout=60)
    assert took < 6.0, f"exit took {took:.1f}s with a 1 s grace period"
    assert "grace period over with 1 request(s) still in flight" in w.log()
    assert "error" in result or result.get("status") != 200 or result["done_at"] - signalled < 6.0


def test_concurrent_loads_of_one_version_both_succeed(worker_start, tmp_path):
    """A second load of a version being loaded waits for the first and reports it already loaded."""
    art = build_large_model(tmp_path, "big", "1", 60_000_000)
    w = worker_start(artifact_root=tmp_path)
    answers: list[httpx.Response] = []

    def load_big() -> None:
        with w.client() as c:
            answers.append(load(c, "big", "1", sha256=art.sha256))

    threads = [threading.Thread(target=load_big) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted(a.json()["already_loaded"] for a in answers) == [False, True]
    with w.client() as c:
        status = c.get("/worker/status").json()
        assert status["memory_used"] == art.size_bytes
        assert c.post("/v2/models/big/infer", json=infer_body(ROWS)).json()["outputs"][0]["shape"] == [3, 1]
