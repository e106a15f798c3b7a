"""Locust (through the harness's load runner) vs wrk on the same endpoint: figures printed, not asserted.

    .venv/bin/python benchmarks/load_vs_wrk.py [--users 8] [--seconds 10] [--processes 1] [--target infer]

By default it starts a real ``python -m sut.worker`` alone (no gateway) on 127.0.0.1, loads the demo
model version 1 through the repository API and measures V2 infer on it; ``--target live`` measures
``GET /v2/health/live`` instead; ``--url http://127.0.0.1:PORT`` uses a server that already runs.
The two generators run one after the other with the same number of connections (wrk ``-c`` = users)
and the same request body. The harness's p50 is computed from its raw samples (``harness.slo``), wrk's
from its own latency histogram (Lua ``done`` hook, microsecond resolution).

Locust is single-core bound (one gevent loop per process); ``--processes N`` forks N of them. On a
small machine the load generator and the server share the cores, which is part of what is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from harness.load.runner import LoadProfile, LoadRun, check_host
from harness.slo import LatencySummary

ROWS = 1
_WRK_LUA = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("WRKRESULT %d %d %f %f %f %f\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout,
    seconds, latency:percentile(50) / 1e6, latency:percentile(99) / 1e6, latency.mean / 1e6))
end
"""


def _infer_body(rows: int) -> str:
    data = [round(0.1 * (i % 40) - 2.0, 3) for i in range(rows * 4)]
    return json.dumps(
        {"id": "wrk", "inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": data}]}
    )


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


class Worker:
    """A real sut worker, alone, with demo version 1 loaded through the repository API."""

    def __init__(self, workdir: Path) -> None:
        from sut.demo_models import build_demo
        from sut.launcher import free_port, spawn_detached, stop_process_group

        self._stop = stop_process_group
        build_demo(workdir / "artifacts", versions=("1",))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable, "-m", "sut.worker", "--host", "127.0.0.1", "--port", str(port),
            "--gateway", "", "--artifact-root", str(workdir / "artifacts"), "--name", "bench",
        ]  # fmt: skip
        self.log = workdir / "worker.log"
        self.process = spawn_detached(argv, self.log)
        try:
            self._wait_live()
            answer = httpx.post(
                f"{self.url}/v2/repository/models/demo/load",
                json={"parameters": {"version": "1", "artifact_uri": "demo/1/model.onnx"}},
                timeout=60,
            )
            answer.raise_for_status()
        except BaseException:
            self.close()
            raise

    def _wait_live(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"worker not live after 60 s: {self.log.read_text()[-2000:]}")

    def close(self) -> None:
        self._stop(self.process.pid, grace=10)
        self.process.wait(5)


def run_locust(url: str, target: str, users: int, seconds: int, processes: int, workdir: Path) -> dict:
    task = {"infer": "infer", "live": "live"}[target]
    profile = LoadProfile(users=users, duration_s=seconds, task_mix={task: 1}, processes=processes, rows=ROWS)
    run = LoadRun.start(url, profile, workdir)
    try:
        run.wait(timeout=seconds + 60)
    finally:
        run.stop()
    samples = run.samples()
    if not samples:
        raise RuntimeError(f"locust produced no samples:\n{run.log_tail}")
    span = max(o.ended for o in samples) - min(o.started for o in samples)
    summary = LatencySummary.of(samples)
    return {
        "requests": len(samples),
        "errors": sum(1 for o in samples if not o.ok),
        "rps": len(samples) / span,
        "p50": summary.p50,
        "p99": summary.p99,
        "avg": summary.avg,
    }


def run_wrk(url: str, target: str, users: int, seconds: int, workdir: Path) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    if target == "infer":
        path, method, body = "/v2/models/demo/versions/1/infer", "POST", _lua_string(_infer_body(ROWS))
    else:
        path, method, body = "/v2/health/live", "GET", "nil"
    script = workdir / "wrk.lua"
    script.write_text(_WRK_LUA.format(method=method, body=body))
    threads = min(users, 2)
    out = subprocess.run(
        [wrk, "-t", str(threads), "-c", str(users), "-d", f"{seconds}s", "-s", str(script), url + path],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKRESULT")), None)
    if line is None:
        raise RuntimeError(f"no result line from wrk:\n{out}")
    requests, errors, duration, p50, p99, avg = line.split()[1:]
    return {
        "requests": int(requests),
        "errors": int(errors),
        "rps": int(requests) / float(duration),
        "p50": float(p50),
        "p99": float(p99),
        "avg": float(avg),
        "threads": threads,
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:8.2f} ms"


def _print_round(label: str, locust: dict, wrk: dict) -> float | None:
    for name, r in (("locust (harness)", locust), ("wrk", wrk)):
        print(
            f"{label} {name:17s} requests {r['requests']:7d}  errors {r['errors']:5d}  {r['rps']:8.1f} req/s"
            f"  p50 {_ms(r['p50'])}  p99 {_ms(r['p99'])}  avg {_ms(r['avg'])}"
        )
    return locust["p50"] / wrk["p50"] if locust["p50"] and wrk["p50"] else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="Locust users = wrk connections")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--processes", type=int, default=1, help="Locust processes (--processes)")
    parser.add_argument("--target", choices=("infer", "live"), default="infer")
    parser.add_argument("--rounds", type=int, default=1, help="alternate locust/wrk this many times")
    parser.add_argument("--url", default=None, help="an already running server (http://127.0.0.1:PORT)")
    args = parser.parse_args()
    if args.url:
        try:  # before any request (warm-up and wrk included): load never leaves this machine
            args.url = check_host(args.url, loopback_only=True)
        except ValueError as exc:
            parser.error(str(exc))

    rounds: list[tuple[dict, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        worker = None if args.url else Worker(workdir)
        url = args.url or worker.url  # type: ignore[union-attr]
        try:
            for _ in range(20):  # warm-up: the first requests pay for lazy initialisation in the server
                if args.target == "infer":
                    httpx.post(
                        f"{url}/v2/models/demo/versions/1/infer", content=_infer_body(ROWS), timeout=10
                    )
            for _ in range(args.rounds):  # alternating, so that a noisy neighbour hurts both alike
                locust = run_locust(url, args.target, args.users, args.seconds, args.processes, workdir)
                wrk = run_wrk(url, args.target, args.users, args.seconds, workdir)
                rounds.append((locust, wrk))
        finally:
            if worker is not None:
                worker.close()

    print(f"endpoint: {args.target} on {url} ({'external' if args.url else 'sut.worker, demo v1'})")
    print(f"users/connections: {args.users}, duration: {args.seconds} s, rows per request: {ROWS}")
    print(
        f"locust processes: {args.processes} (each one is single-core bound);"
        f" wrk threads: {rounds[0][1]['threads']}; rounds: {args.rounds}"
    )
    ratios = [r for i, (lo, wr) in enumerate(rounds, 1) if (r := _print_round(f"[{i}]", lo, wr)) is not None]
    if ratios:
        ratio = statistics.median(ratios)
        verdict = "within" if abs(ratio - 1) <= 0.10 else "NOT within"
        print(f"p50 ratio harness/wrk (median of rounds): {ratio:.3f} ({verdict} the 10 % target)")
    throughput = statistics.median(lo["rps"] / wr["rps"] for lo, wr in rounds)
    print(f"throughput ratio harness/wrk (median of rounds): {throughput:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
