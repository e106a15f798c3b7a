"""Ask a real MLServer the questions docs/mlserver.md answers, and print what it answered.

    python tools/mlserver_probe.py [--backend local|docker] [--parallel-workers N]

Starts MLServer (the cached venv, or the offline image) on a fresh repository holding the iris fixture
model, sends each probe, and prints one block per probe: the request, the status, the body (cut at 300
characters). Nothing is judged here: this is the evidence from which the docs are written, so that a
failing protocol scenario can be told apart as MLServer's defect or ours.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from fixtures.sklearn_models import build_versions, expected_outputs, infer_request, valid_rows
from harness.targets.mlserver.repository import (
    RepositoryClient,
    ServerSettings,
    make_repository,
    model_settings,
)
from harness.targets.mlserver.server import MLServerHandle, start_container, start_local

CUT = 300


def show(title: str, call: Callable[[], httpx.Response], sent: str = "") -> httpx.Response | None:
    """Send (``call``), print the request and the answer, or the transport error instead of an answer."""
    print(f"### {title}")
    try:
        response = call()
    except httpx.HTTPError as exc:
        print(f"{exc.request.method} {exc.request.url.path}{' ' + sent if sent else ''}")
        print(f"-> no answer: {type(exc).__name__}: {exc}\n")
        return None
    request = response.request
    print(f"{request.method} {request.url.path}{' ' + sent if sent else ''}")
    print(f"-> {response.status_code} {response.text[:CUT]}\n")
    return response


def start(backend: str, root: Path, workdir: Path, workers: int | None) -> MLServerHandle:
    if backend == "docker":
        return start_container(root, parallel_workers=workers)
    return start_local(root, workdir, parallel_workers=workers)


def probe_empty(args, base: Path) -> None:
    """A server whose repository holds no model settings."""
    root = base / "empty"
    make_repository(root, ServerSettings(0, 0, 0), {})
    with (
        start(args.backend, root, base / "work-empty", args.parallel_workers) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http,
    ):
        print("## server with no model loaded\n")
        show("live", lambda: http.get("/v2/health/live"))
        show("ready", lambda: http.get("/v2/health/ready"))
        show("repository index", lambda: http.post("/v2/repository/index", json={}), "{}")


def probe_protocol(args, base: Path) -> None:
    root = base / "repo"
    artifacts = build_versions(root)
    make_repository(root, ServerSettings(0, 0, 0), {"iris": "1"})
    rows = valid_rows(3, seed=7)
    with (
        start(args.backend, root, base / "work", args.parallel_workers) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http,
    ):
        server.wait_model_ready("iris")
        repo = RepositoryClient(root, server.url)
        print(f"## iris v1 loaded ({args.backend}, parallel_workers={args.parallel_workers})\n")
        show("ready", lambda: http.get("/v2/health/ready"))
        show("server metadata", lambda: http.get("/v2"))
        show("model metadata", lambda: http.get("/v2/models/iris"))
        show("version metadata, loaded version", lambda: http.get("/v2/models/iris/versions/1"))
        show("version metadata, version not loaded", lambda: http.get("/v2/models/iris/versions/2"))
        show("model ready", lambda: http.get("/v2/models/iris/ready"))
        # The same artifact as a model whose settings declare no metadata (only name, runtime, uri, version).
        bare = {k: v for k, v in model_settings("bare", "1").items() if k in ("name", "implementation")}
        bare["parameters"] = {
            "uri": str(artifacts["1"].path.relative_to(root / "iris").as_posix()),
            "version": "1",
        }
        (root / "bare").mkdir()
        (root / "bare" / "1").symlink_to(artifacts["1"].path.parent)
        (root / "bare" / "model-settings.json").write_text(json.dumps(bare))
        show(
            "load a model added after start (no metadata declared)",
            lambda: repo.load("bare"),
            json.dumps(bare),
        )
        show("its metadata", lambda: http.get("/v2/models/bare"))
        show("its version metadata", lambda: http.get("/v2/models/bare/versions/1"))
        show("unload it", lambda: repo.unload("bare"))
        show("version 2 ready (not loaded)", lambda: http.get("/v2/models/iris/versions/2/ready"))
        body = infer_request(rows, request_id="probe-1")
        show("infer with id", lambda: http.post("/v2/models/iris/infer", json=body), json.dumps(body))
        print(f"expected (computed here from v1's file): {expected_outputs(artifacts['1'].path, rows)}\n")
        show("infer without id", lambda: http.post("/v2/models/iris/infer", json=infer_request(rows)))
        show(
            "infer version 1", lambda: http.post("/v2/models/iris/versions/1/infer", json=infer_request(rows))
        )
        show(
            "infer version 2 (not loaded)",
            lambda: http.post("/v2/models/iris/versions/2/infer", json=infer_request(rows)),
        )
        show("infer unknown model", lambda: http.post("/v2/models/nope/infer", json=infer_request(rows)))
        bad = b'{"inputs": [{"name": "input-0", "shape": [1, 4], '
        show(
            "malformed JSON",
            lambda: http.post(
                "/v2/models/iris/infer", content=bad, headers={"content-type": "application/json"}
            ),
            bad.decode(),
        )
        for title, mutate in _bad_inputs(rows):
            body = infer_request(rows)
            mutate(body)
            answer = show(
                title, lambda b=body: http.post("/v2/models/iris/infer", json=b), json.dumps(body)[:200]
            )
            if answer is None or answer.status_code >= 500:
                print(f"(server still running: {server.alive()}; last log lines:)\n{server._tail(6)}\n")
        show("repository index", lambda: http.post("/v2/repository/index", json={}), "{}")
        show("load unknown model", lambda: http.post("/v2/repository/models/nope/load"))
        show("unload iris", lambda: http.post("/v2/repository/models/iris/unload"))
        show("model ready after unload", lambda: http.get("/v2/models/iris/ready"))
        show("version 1 ready after unload", lambda: http.get("/v2/models/iris/versions/1/ready"))
        show("model metadata after unload", lambda: http.get("/v2/models/iris"))
        show("infer after unload", lambda: http.post("/v2/models/iris/infer", json=infer_request(rows)))
        show("server ready after unload", lambda: http.get("/v2/health/ready"))
        show("repository index after unload", lambda: http.post("/v2/repository/index", json={}), "{}")
        show("unload again", lambda: http.post("/v2/repository/models/iris/unload"))
        show("load v2 (settings rewritten)", lambda: repo.load_version("iris", "2"))
        show("infer after loading v2", lambda: http.post("/v2/models/iris/infer", json=infer_request(rows)))
        print(f"expected (v2's file): {expected_outputs(artifacts['2'].path, rows)}\n")
        show("version 1 after loading v2", lambda: http.get("/v2/models/iris/versions/1/ready"))
        _metrics(server)
        _swap_under_load(http, repo, artifacts, server)
        _unload_in_flight(http, repo, server, artifacts, args.unload_after)


def _bad_inputs(rows):
    def set_(path, value):
        def mutate(body):
            target = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return mutate

    return [
        ("datatype FP32 (model trained on FP64)", set_(["inputs", 0, "datatype"], "FP32")),
        ("datatype INT64 with float data", set_(["inputs", 0, "datatype"], "INT64")),
        ("datatype BYTES with float data", set_(["inputs", 0, "datatype"], "BYTES")),
        ("datatype unknown NOPE", set_(["inputs", 0, "datatype"], "NOPE")),
        ("data strings, datatype FP64", set_(["inputs", 0, "data"], [["a", "b", "c", "d"]] * len(rows))),
        ("shape [N, 3] with N*4 values", set_(["inputs", 0, "shape"], [len(rows), 3])),
        ("shape [N, 5] with N*4 values", set_(["inputs", 0, "shape"], [len(rows), 5])),
        ("3 features per row, shape [N, 3]", lambda b: b["inputs"][0].update(
            shape=[len(rows), 3], data=[r[:3] for r in rows])),
        ("wrong input name", set_(["inputs", 0, "name"], "no-such-input")),
        ("missing inputs", lambda b: b.pop("inputs")),
        ("empty inputs list", set_(["inputs"], [])),
        ("two inputs", lambda b: b["inputs"].append(dict(b["inputs"][0], name="second"))),
    ]  # fmt: skip


def _metrics(server: MLServerHandle) -> None:
    with httpx.Client(trust_env=False, timeout=10) as http:
        text = http.get(server.metrics_url).text
    print(f"## metrics at {server.metrics_url}\n")
    for line in text.splitlines():
        if line.startswith("# TYPE") or (
            not line.startswith("#")
            and ("infer" in line or "rest_server_request" in line)
            and "bucket" not in line
        ):
            print(line)
    print()
    with httpx.Client(trust_env=False, timeout=10) as http:
        main = http.get(server.url + "/metrics")
    print(f"GET {server.url}/metrics (the HTTP port) -> {main.status_code} {main.text[:100]}\n")


def _swap_under_load(http: httpx.Client, repo: RepositoryClient, artifacts, server) -> None:
    """v1 loaded; 50 users (0.1 s think) send unversioned requests while v2 is loaded and v1 released."""
    print("## load v2 while 50 users send requests (unversioned infer)\n")
    show("back to v1", lambda: repo.load_version("iris", "1"))
    rows = valid_rows(1, seed=3)
    expected = {v: expected_outputs(a.path, rows)[0] for v, a in artifacts.items()}
    outcomes: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def user() -> None:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.post("/v2/models/iris/infer", json=infer_request(rows))
                    outcomes.append((time.monotonic(), r.status_code, r.text[:CUT]))
                except httpx.HTTPError as exc:
                    outcomes.append((time.monotonic(), -1, repr(exc)))
                time.sleep(0.1)

    threads = [threading.Thread(target=user) for _ in range(50)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    began = time.monotonic()
    answer = repo.load_version("iris", "2")
    ended = time.monotonic()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    print(f"load answered {answer.status_code} in {ended - began:.3f} s")
    by_phase: Counter = Counter()
    samples: dict[tuple, str] = {}
    for at, status, text in outcomes:
        phase = "before" if at < began else "during" if at <= ended else "after"
        value = None
        if status == 200:
            data = json.loads(text)["outputs"][0]["data"][0] if text.endswith("}") else None
            value = next((v for v, e in expected.items() if data is not None and abs(data - e) < 1e-9), "?")
        key = (phase, status, value)
        by_phase[key] += 1
        samples.setdefault(key, text)
    for key, count in sorted(by_phase.items(), key=str):
        print(f"  {key[0]:6} status {key[1]} version {key[2]}: {count}" + (
            f"   e.g. {samples[key][:200]}" if key[1] != 200 else ""))  # fmt: skip
    print()


def _unload_in_flight(http: httpx.Client, repo: RepositoryClient, server, artifacts, after_s: float) -> None:
    """A large request in flight while the model is unloaded: does it get its (correct) answer?"""
    print("## unload while a large request is in flight\n")
    show("reload v1", lambda: repo.load_version("iris", "1"))
    rows = valid_rows(200_000, seed=4)
    body = json.dumps(infer_request(rows)).encode()
    result: dict = {}

    def big() -> None:
        with httpx.Client(trust_env=False, timeout=120) as client:
            headers = {"content-type": "application/json"}
            r = client.post(server.url + "/v2/models/iris/infer", content=body, headers=headers)
            result.update(status=r.status_code, done=time.monotonic(), response=r)

    thread = threading.Thread(target=big)
    started = time.monotonic()
    thread.start()
    time.sleep(after_s)
    unload_sent = time.monotonic() - started
    unload = repo.unload("iris")
    unload_done = time.monotonic() - started
    thread.join()
    response = result["response"]
    verdict = response.text[:200]
    if response.status_code == 200:
        got = response.json()["outputs"][0]["data"]
        want = expected_outputs(artifacts["1"].path, rows)
        verdict = f"{len(got)} outputs, all equal to v1's expected: {got == want}"
    print(
        f"body {len(body) / 1e6:.1f} MB; unload sent at +{unload_sent:.2f} s, answered {unload.status_code} "
        f"at +{unload_done:.2f} s; the large request answered {result['status']} at "
        f"+{result['done'] - started:.2f} s: {verdict}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    parser.add_argument("--parallel-workers", type=int, default=None)
    parser.add_argument("--unload-after", type=float, default=0.3, help="seconds after the large request")
    parser.add_argument("--only", choices=("empty", "protocol"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlserver-probe-") as tmp:
        if args.only in (None, "empty"):
            probe_empty(args, Path(tmp))
        if args.only in (None, "protocol"):
            probe_protocol(args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
