"""The load driver against a real HTTP server on 127.0.0.1 (Locust in a real subprocess).

The server is this file run as a script (``python test_load_runner.py SERVED_IDS_FILE``): a small
threaded V2 endpoint that answers like a worker (``model_version`` in the body, the id echoed) and
appends every answered request id to a file, so the tests can check that no answered request is
missing from the samples (and, next to it, the inputs and the ``X-Api-Key`` header each request carried).
Each answer's ``predict`` output is the sum of each row's inputs. Models: ``demo`` (fast), ``slow`` (0.3 s
per request), ``broken`` (500).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from harness.load import runner as runner_module
from harness.load import schedule as shapes
from harness.load.endpoints import Endpoint
from harness.load.runner import LoadError, LoadProfile, LoadRun
from harness.slo import client_timeouts
from harness.waiting import Watch, http_ok, poll, until

pytestmark = pytest.mark.slow


# -- the test server (runs in its own process) -----------------------------------------------------
class _V2Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served_ids_file: Path
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _model(self) -> tuple[str, str]:
        parts = self.path.strip("/").split("/")  # v2 models M [versions V] [infer|ready]
        model = parts[2]
        version = parts[4] if len(parts) > 4 and parts[3] == "versions" else "1"
        return model, version

    def do_GET(self) -> None:
        if self.path in ("/v2/health/ready", "/v2/health/live"):
            self._answer(200, {})
        elif self.path.startswith("/v2/models/"):
            model, _ = self._model()
            self._answer(200, {"name": model, "versions": ["1", "2"], "platform": "onnxruntime_onnx"})
        else:
            self._answer(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not (self.path.startswith("/v2/models/") and self.path.endswith("/infer")):
            self._answer(404, {"error": f"no route {self.path}"})
            return
        model, version = self._model()
        if model == "broken":
            self._answer(500, {"error": "model broken failed"})
            return
        if model == "slow":
            time.sleep(0.3)
        rows = request["inputs"][0]["shape"][0]
        data = request["inputs"][0]["data"]
        width = len(data) // rows
        sums = [sum(data[r * width : (r + 1) * width]) for r in range(rows)]
        seen = {"id": request["id"], "inputs": request["inputs"], "key": self.headers.get("X-Api-Key")}
        with self.lock:  # before answering: a cut-off answer counts
            with self.served_ids_file.open("a") as f:
                f.write(request["id"] + "\n")
            with self.served_ids_file.with_suffix(".jsonl").open("a") as f:
                f.write(json.dumps(seen) + "\n")
        self._answer(
            200,
            {
                "model_name": model,
                "model_version": version,
                "id": request["id"],
                "outputs": [{"name": "predict", "shape": [rows, 1], "datatype": "FP32", "data": sums}],
            },
        )


def _serve(served_ids_file: str) -> None:
    _V2Handler.served_ids_file = Path(served_ids_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V2Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


# -- fixtures ------------------------------------------------------------------------------------------
class Server:
    def __init__(self, url: str, served_ids_file: Path) -> None:
        self.url = url
        self.served_ids_file = served_ids_file

    def served_ids(self) -> set[str]:
        if not self.served_ids_file.exists():
            return set()
        return set(self.served_ids_file.read_text().split())

    def requests(self) -> dict[str, dict]:
        """What each answered request carried, by id."""
        path = self.served_ids_file.with_suffix(".jsonl")
        lines = path.read_text().splitlines() if path.exists() else []
        return {r["id"]: r for r in map(json.loads, lines)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = tmp_path_factory.mktemp("server") / "served_ids.txt"
    proc = subprocess.Popen(
        [sys.executable, __file__, str(served)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Server(f"http://127.0.0.1:{port}", served)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def runs() -> Iterator[list[LoadRun]]:
    """Every run a test starts; stopped (and checked gone) whatever the test did."""
    started: list[LoadRun] = []
    yield started
    for run in started:
        run.stop(timeout=20)
    for run in started:
        assert _group_members(run.process.pid) == [], "a locust process outlived stop()"


def _group_members(pgid: int) -> list[int]:
    """PIDs in process group ``pgid``, read from /proc (no psutil)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _start(runs: list[LoadRun], server_url: str, tmp_path: Path, **profile: object) -> LoadRun:
    run = LoadRun.start(server_url, LoadProfile(**profile), tmp_path)  # type: ignore[arg-type]
    runs.append(run)
    return run


# -- tests ---------------------------------------------------------------------------------------------
def test_samples_arrive_while_running_and_stop_loses_none(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=4, model="slow", version="2")
    run.wait_for_samples(8, timeout=60)
    assert run.running, "samples must be readable while the load runs"
    during = run.samples()
    assert len(during) >= 8
    first = during[0]
    assert first.source == "load" and first.status == 200 and first.model_version == "2"
    assert first.target == "POST /v2/models/slow/versions/2/infer"
    assert 0.29 < first.latency_s < 5, "the latency must be the real request time (the server sleeps 0.3 s)"

    run.stop()
    assert not run.running
    final = run.samples()
    ids = {o.request_id for o in final}
    assert len(ids) == len(final), "request ids must be unique"
    served = {i for i in server.served_ids() if i.startswith(first.request_id.rsplit("-", 2)[0])}
    # graceful stop: every request the server answered was recorded (none cut off in flight)
    assert served <= ids, f"{len(served - ids)} answered requests have no sample"
    assert all(o.status == 200 for o in final)
    run.stop()  # idempotent


def test_duration_limited_run_ends_by_itself(server: Server, runs: list, tmp_path: Path) -> None:
    t0 = time.time()
    run = _start(runs, server.url, tmp_path, users=2, duration_s=2, rows=3)
    code = run.wait(timeout=60)
    assert code == 0, run.log_tail
    samples = run.samples()
    assert len(samples) > 20
    assert min(o.started for o in samples) >= t0
    starts = sorted(o.started for o in samples)
    gaps = max(b - a for a, b in itertools.pairwise(starts))
    diagnosis = f"first {starts[0] - t0:.2f} s after start, largest gap {gaps:.2f} s\n{run.log_tail}"
    span = starts[-1] - starts[0]
    assert 1.0 < span < 3.5, f"a 2 s run sent requests over {span:.2f} s; {diagnosis}"
    assert {o.model_version for o in samples} == {"1"}  # no version = the default (production) one


def test_think_time_spaces_each_users_requests(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=2, duration_s=2, think_s=0.5)
    assert run.wait(timeout=60) == 0, run.log_tail
    samples = run.samples()
    # 2 users, one request every >= 0.5 s each, for about 2 s: a handful, not hundreds
    assert 2 <= len(samples) <= 14, f"{len(samples)} requests from 2 users thinking 0.5 s over 2 s"


def test_task_mix_is_respected_roughly(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=2, task_mix={"infer": 3, "metadata": 1, "ready": 0})
    run.wait_for_samples(400, timeout=60)
    run.stop()
    by_target = Counter(o.target for o in run.samples())
    assert set(by_target) == {"POST /v2/models/demo/infer", "GET /v2/models/demo"}
    share = by_target["POST /v2/models/demo/infer"] / sum(by_target.values())
    assert 0.65 < share < 0.85, f"infer share {share:.2f}, weight says 0.75 ({by_target})"


def test_error_statuses_are_recorded(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=1, model="broken")
    run.wait_for_samples(5, timeout=60)
    run.stop()
    samples = run.samples()
    assert {o.status for o in samples} == {500}
    assert all(o.error and "model broken failed" in o.error for o in samples)
    assert all(o.model_version is None for o in samples)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nobody listens there


def test_connection_errors_are_status_0(runs: list, tmp_path: Path) -> None:
    run = _start(runs, f"http://127.0.0.1:{_closed_port()}", tmp_path, users=1, timeout_s=2)
    run.wait_for_samples(3, timeout=60)
    run.stop()
    samples = run.samples()
    assert samples and all(o.status == 0 and o.failed for o in samples)
    assert all("refused" in (o.error or "").lower() for o in samples), samples[0].error


def test_client_timeouts_are_status_0(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=1, model="slow", timeout_s=0.1)  # the server takes 0.3 s
    run.wait_for_samples(3, timeout=60)
    run.stop()
    samples = run.samples()
    assert all(o.status == 0 for o in samples), {o.status for o in samples}
    assert client_timeouts(samples) == len(samples), samples[0].error
    assert all(0.09 < o.latency_s < 0.3 for o in samples), [o.latency_s for o in samples]


def test_locust_failure_surfaces_with_the_log_tail(
    server: Server, runs: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken_locustfile.py"
    broken.write_text("raise ImportError('locustfile cannot import its settings')\n")
    monkeypatch.setattr(runner_module, "LOCUSTFILE", broken)
    run = _start(runs, server.url, tmp_path, users=1)
    with pytest.raises(LoadError) as raised:
        run.wait_for_samples(1, timeout=60)
    message = str(raised.value)
    assert "locust exited" in message and "after 0 of the 1 samples" in message
    assert "locustfile cannot import its settings" in message, "the log tail must show Locust's own error"


@pytest.mark.parametrize(
    "ending",
    [
        "exit",  # the interpreter exits without stop(): the atexit hook kills the group
        "sigterm",  # the SIGTERM hook kills the group, then the process dies of SIGTERM as before
        "sigkill",  # nothing runs in the test process: the locustfile notices its parent is gone and quits
    ],
)
def test_locust_dies_with_the_process_that_started_it(server: Server, tmp_path: Path, ending: str) -> None:
    script = (
        "import sys\n"
        "from harness.load.runner import LoadProfile, LoadRun\n"
        f"run = LoadRun.start({server.url!r}, LoadProfile(users=1), {str(tmp_path)!r})\n"
        "run.wait_for_samples(1, timeout=60)\n"
        "print(run.process.pid, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    repo = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    locust_pid = 0
    try:
        assert parent.stdin is not None and parent.stdout is not None
        locust_pid = int(parent.stdout.readline())
        assert _group_members(locust_pid), "locust should be running"
        if ending == "exit":
            parent.stdin.write("\n")
            parent.stdin.flush()
        else:
            parent.send_signal(signal.SIGTERM if ending == "sigterm" else signal.SIGKILL)
        parent.wait(30)
        left = poll(lambda: _group_members(locust_pid), lambda members: not members, timeout=20, interval=0.2)
        assert left == [], f"locust outlived the test process ({ending})"
        (log,) = tmp_path.glob("load-*/locust.log")
        graceful = "Got SIGTERM signal" in log.read_text()
        # the hooks kill at once (SIGKILL); only the locustfile's own watchdog shuts down gracefully
        assert graceful == (ending == "sigkill"), log.read_text()[-2000:]
    finally:
        parent.kill()
        parent.wait(10)
        if locust_pid and _group_members(locust_pid):
            os.killpg(locust_pid, signal.SIGKILL)


def test_base_urls_are_checked(tmp_path: Path) -> None:
    for host in (
        "127.0.0.1:80",
        "ftp://127.0.0.1:21",
        "http://:80",
        "http://127.0.0.1:70000",
        "http://h/?q=1",
    ):
        with pytest.raises(ValueError, match=r"http\(s\)://host"):
            LoadRun.start(host, LoadProfile(users=1), tmp_path)
    # any http(s) base URL a user gives is accepted (nothing is sent here: only the check runs)
    assert (
        runner_module.check_host("https://serving-gateway:8443/prefix/")
        == "https://serving-gateway:8443/prefix"
    )
    assert runner_module.check_host("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    # our own benchmarks keep to loopback
    for host in ("http://localhost:80", "http://10.0.0.1:80", "https://127.0.0.1:443", "http://127.0.0.1"):
        with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
            runner_module.check_host(host, loopback_only=True)
    with pytest.raises(ValueError, match="unknown task"):
        LoadProfile(users=1, task_mix={"train": 1})


def test_the_model_body_and_headers_are_sent_and_samples_carry_inputs_and_outputs(
    server: Server, runs: list, tmp_path: Path
) -> None:
    inputs = [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]}]
    run = _start(
        runs,
        server.url,
        tmp_path,
        users=1,
        body={"id": "ignored", "inputs": inputs},
        headers={"X-Api-Key": "k1"},
    )
    run.wait_for_samples(5, timeout=60)
    run.stop()
    samples = run.samples()
    seen = server.requests()
    for sample in samples:
        assert sample.status == 200 and sample.request_id != "ignored", "each request gets its own id"
        carried = seen[sample.request_id]
        assert carried["inputs"] == inputs and carried["key"] == "k1"
        assert sample.inputs == {"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]}
        assert sample.outputs == {"predict": [6.0, 15.5]}, "the answer's outputs, as the server computed them"


def test_processes_scale_out(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=4, processes=2)
    run.wait_for_samples(200, timeout=90)
    run.stop()
    samples = run.samples()
    writers = {o.request_id.split("-")[2] for o in samples if o.request_id}
    assert len(writers) == 2, f"expected samples from 2 Locust worker processes, got {writers}"
    assert len(list((run.rundir / "samples").glob("samples-*.jsonl"))) == 2


class _Detached:
    """What :class:`harness.waiting.Watch` asks of a service, for one detached process and its log."""

    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def exit_code(self, name: str) -> int | None:
        return self.proc.poll()

    def logs(self, name: str) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _per_second(samples: list, t0: float, start: float, end: float) -> float:
    return sum(1 for o in samples if t0 + start <= o.started < t0 + end) / (end - start)


def test_a_schedule_drives_the_user_count_and_ends_the_run(
    server: Server, runs: list, tmp_path: Path
) -> None:
    spike = shapes.spike(1, factor=4, at_s=2, for_s=2.5, duration_s=6)
    run = _start(runs, server.url, tmp_path, users=4, schedule=spike, think_s=0.1)
    assert run.wait(timeout=60) == 0, run.log_tail  # the schedule's end stops Locust
    samples = run.samples()
    t0 = min(o.started for o in samples)
    before, during, after = (_per_second(samples, t0, a, b) for a, b in ((0.5, 2), (2.8, 4.3), (5, 5.8)))
    assert during > 2 * before and during > 2 * after, (
        f"req/s before {before}, during {during}, after {after}"
    )
    assert max(o.started for o in samples) - t0 < 7.5


def test_a_user_rate_paces_each_user(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(runs, server.url, tmp_path, users=2, schedule=shapes.sustained(2, 4), user_rate=5.0)
    assert run.wait(timeout=60) == 0, run.log_tail
    count = len(run.samples())
    assert 25 <= count <= 45, f"2 users at 5 req/s for 4 s sent {count} requests (expected about 40)"


def test_endpoints_come_from_the_file_with_a_fresh_id_each(
    server: Server, runs: list, tmp_path: Path
) -> None:
    body = {"parameters": {"note": "any body"}, "inputs": [{"name": "x", "shape": [3, 2], "data": [0] * 6}]}
    endpoints = (
        Endpoint("v2", 3, "POST", "/v2/models/custom/versions/2/infer", body),
        Endpoint("live", 1, "GET", "/v2/health/live"),
    )
    run = _start(runs, server.url, tmp_path, users=2, endpoints=endpoints, model="ignored")
    run.wait_for_samples(80, timeout=60)
    run.stop()
    samples = run.samples()
    by_target = Counter(o.target for o in samples)
    assert set(by_target) == {"POST /v2/models/custom/versions/2/infer", "GET /v2/health/live"}
    infers = [o for o in samples if o.target.startswith("POST")]
    assert all(o.status == 200 and o.model_version == "2" for o in infers)
    ids = [o.request_id for o in infers]
    assert len(set(ids)) == len(ids) and set(ids) <= server.served_ids(), "each id was sent and echoed"
    assert "demo" not in (run.rundir / "endpoints.json").read_text()


def test_master_worker_mode_brings_every_workers_samples_back(
    server: Server, runs: list, tmp_path: Path
) -> None:
    run = _start(runs, server.url, tmp_path, users=4, load_workers=2, think_s=0.01)
    assert len(run.workers) == 2
    run.wait_for_samples(200, timeout=90)
    run.stop()
    samples = run.samples()
    writers = {o.request_id.split("-")[2] for o in samples if o.request_id}
    assert writers == {str(w.process.pid) for w in run.workers}, "the samples come from both worker processes"
    assert all(o.status == 200 for o in samples)
    assert all(w.process.poll() is not None for w in run.workers)


def test_a_schedule_runs_across_forked_processes_too(server: Server, runs: list, tmp_path: Path) -> None:
    run = _start(
        runs, server.url, tmp_path, users=4, schedule=shapes.sustained(4, 3), processes=2, think_s=0.05
    )
    assert run.wait(timeout=90) == 0, run.log_tail
    samples = run.samples()
    writers = {o.request_id.split("-")[2] for o in samples if o.request_id}
    assert len(writers) == 2 and len(samples) > 40, (writers, len(samples))


@pytest.fixture(scope="module")
def sut_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``python -m sut.worker`` (alone, no gateway) with demo versions 1 and 2 loaded."""
    from sut.demo_models import build_demo
    from sut.launcher import free_port, spawn_detached, stop_process_group, worker_command

    root = tmp_path_factory.mktemp("sut-worker")
    build_demo(root / "artifacts", versions=("1", "2"))
    port = free_port()
    argv = worker_command(port=port, gateway_url="", artifact_root=root / "artifacts", name="load-test")
    proc = spawn_detached(argv, root / "worker.log")
    url = f"http://127.0.0.1:{port}"
    try:
        until(
            lambda: http_ok(f"{url}/v2/health/live"),
            timeout=60,
            what="the sut worker to be live",
            interval=0.2,
            watch=Watch(_Detached(proc, root / "worker.log"), ("load-test",)),
        )
        for version in ("1", "2"):
            answer = httpx.post(
                f"{url}/v2/repository/models/demo/load",
                json={"parameters": {"version": version, "artifact_uri": f"demo/{version}/model.onnx"}},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        yield url
    finally:
        stop_process_group(proc.pid, grace=10)
        proc.wait(10)


def test_against_a_real_sut_worker(sut_worker: str, runs: list, tmp_path: Path) -> None:
    v2 = _start(runs, sut_worker, tmp_path, users=2, version="2", rows=5)
    v1 = _start(runs, sut_worker, tmp_path, users=1, version="1")
    v2.wait_for_samples(30, timeout=60)
    v1.wait_for_samples(10, timeout=60)
    v2.stop()
    v1.stop()
    assert {(o.status, o.model_version) for o in v2.samples()} == {(200, "2")}
    assert {(o.status, o.model_version) for o in v1.samples()} == {(200, "1")}
    missing = _start(runs, sut_worker, tmp_path, users=1, version="9")
    missing.wait_for_samples(3, timeout=60)
    missing.stop()
    statuses = {o.status for o in missing.samples()}
    assert len(statuses) == 1 and 400 <= statuses.pop() < 500, "an unknown version is a client error"
    assert all(o.error and '"error"' in o.error for o in missing.samples())


def test_locust_is_not_imported_in_the_test_process() -> None:
    assert "locust" not in sys.modules and "gevent" not in sys.modules


if __name__ == "__main__":
    _serve(sys.argv[1])
