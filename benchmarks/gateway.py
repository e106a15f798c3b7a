"""Gateway overhead and swap duration of the reference cluster, measured on real processes.

    python benchmarks/gateway.py [--requests N] [--clients C] [--swaps S]

Starts a gateway and one worker with the demo model (through ``sut up``, in a temporary state dir),
sends the same infer request through the gateway and straight to the worker (same client, sequential
and with C concurrent clients), then swaps the demo model back and forth. Prints p50/p99 latency and
throughput from raw samples, the gateway/worker ratios, the gateway overhead at p50, and the median
swap duration, next to their targets. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from sut import launcher

SWAP_TARGET_S = 2.0
OVERHEAD_TARGET_MS = 2.0
PAYLOAD = {
    "inputs": [
        {
            "name": "input",
            "shape": [2, 4],
            "datatype": "FP32",
            "data": [0.5, -1.0, 2.0, 0.25, 1.0, 1.0, 1.0, 1.0],
        }
    ]
}


@dataclass
class Run:
    target: str
    mode: str
    latencies_s: np.ndarray
    wall_s: float

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 50) * 1000)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 99) * 1000)

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.wall_s


def _send(client: httpx.Client, url: str, count: int, out: list[float]) -> None:
    for _ in range(count):
        start = time.perf_counter()
        resp = client.post(url, json=PAYLOAD)
        out.append(time.perf_counter() - start)
        if resp.status_code != 200:
            raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:200]}")


def measure(target: str, url: str, requests: int, clients: int) -> Run:
    """``requests`` infer calls split over ``clients`` threads, one keep-alive httpx client each."""
    per_client = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    http = [httpx.Client(timeout=30.0, trust_env=False) for _ in range(clients)]
    try:
        for c in http:  # warm up connections and the model
            _send(c, url, 20, [])

        def work(i: int) -> None:
            try:
                _send(http[i], url, per_client[i], samples[i])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        for c in http:
            c.close()
    if errors:
        raise errors[0]
    mode = "sequential" if clients == 1 else f"{clients} clients"
    return Run(target, mode, np.concatenate([np.asarray(s) for s in samples]), wall)


def measure_swaps(gateway: str, token: str, swaps: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall time seen by the admin client, and the gateway's own ``duration_s``, per swap."""
    wall, reported = [], []
    with httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=60, trust_env=False
    ) as admin:
        for i in range(swaps):
            version = "2" if i % 2 == 0 else "1"
            start = time.perf_counter()
            resp = admin.post("/admin/models/demo/swap", json={"version": version})
            wall.append(time.perf_counter() - start)
            if resp.status_code != 200:
                raise RuntimeError(f"swap to {version} answered {resp.status_code}: {resp.text[:200]}")
            reported.append(float(resp.json()["duration_s"]))
    return np.asarray(wall), np.asarray(reported)


def start_cluster(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "sut", "up", "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"sut up failed: {result.stderr.strip()}")
    state = Path(env["XDG_STATE_HOME"]) / "sut" / "clusters.json"
    return json.loads(state.read_text())["clusters"][-1]


def stop_cluster(env: dict[str, str], cluster: dict | None) -> None:
    subprocess.run(
        [sys.executable, "-m", "sut", "down", "--grace", "5"], env=env, capture_output=True, timeout=60
    )
    for proc in (cluster or {}).get("processes", []):  # belt and braces if `sut down` failed
        if launcher.process_running(proc["pid"], "sut."):
            os.killpg(proc["pid"], signal.SIGKILL)


def report(runs: list[Run], swap_wall: np.ndarray, swap_reported: np.ndarray) -> None:
    print(f"{'target':8} {'mode':12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for r in runs:
        n = len(r.latencies_s)
        print(f"{r.target:8} {r.mode:12} {n:6d} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.throughput:8.0f}")
    print()
    for mode in dict.fromkeys(r.mode for r in runs):
        gw = next(r for r in runs if r.mode == mode and r.target == "gateway")
        wk = next(r for r in runs if r.mode == mode and r.target == "worker")
        overhead = gw.p50_ms - wk.p50_ms
        verdict = "meets" if overhead < OVERHEAD_TARGET_MS else "MISSES"
        print(
            f"{mode:12} gateway/worker: p50 x{gw.p50_ms / wk.p50_ms:.2f}, p99 x{gw.p99_ms / wk.p99_ms:.2f}, "
            f"throughput x{gw.throughput / wk.throughput:.2f}; overhead at p50 {overhead:.2f} ms "
            f"(target < {OVERHEAD_TARGET_MS:.0f} ms: {verdict})"
        )
    median_ms = float(np.median(swap_wall)) * 1000
    verdict = "meets" if median_ms < SWAP_TARGET_S * 1000 else "MISSES"
    print(
        f"swap demo 1<->2 x{len(swap_wall)}: median {median_ms:.0f} ms, max {swap_wall.max() * 1000:.0f} ms "
        f"(gateway-reported median {np.median(swap_reported) * 1000:.0f} ms); "
        f"target < {SWAP_TARGET_S:.0f} s: {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=500, help="infer requests per measurement (default 500)"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--swaps", type=int, default=6, help="swaps back and forth (default 6)")
    args = parser.parse_args(argv)
    if args.requests < 100 or args.clients < 1 or args.swaps < 1:
        parser.error("--requests must be at least 100 (a p99 needs them), --clients and --swaps at least 1")

    with tempfile.TemporaryDirectory(prefix="sut-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("SUT_GATEWAY", "SUT_ADMIN_TOKEN")}
        env["XDG_STATE_HOME"] = tmp
        cluster = None
        try:
            print("starting a gateway and one worker (sut up) ...", file=sys.stderr, flush=True)
            cluster = start_cluster(env)
            gateway = cluster["gateway_url"]
            (worker,) = [p["url"] for p in cluster["processes"] if p["role"] == "worker"]
            path = "/v2/models/demo/versions/1/infer"
            runs = []
            for clients in (1, args.clients):
                for target, base in (("worker", worker), ("gateway", gateway)):
                    runs.append(measure(target, base + path, args.requests, clients))
            swap_wall, swap_reported = measure_swaps(gateway, cluster["admin_token"], args.swaps)
        finally:
            stop_cluster(env, cluster)
    report(runs, swap_wall, swap_reported)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
