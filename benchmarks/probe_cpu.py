"""CPU of one health probe from the test process: ``httpx.get`` (a client per call) against the shared client.

A cluster start polls each service's health path every 50 ms until it answers, so the test process
makes a few dozen probes per scenario. ``httpx.get`` builds a client, and with it a TLS context that
loads the CA bundle, on every call; ``harness.http_client`` keeps one client for the process. Both send
the same request to a server on 127.0.0.1. Rounds alternate A and B in one process; the medians and their
ratio are printed, never asserted.

Run: ``.venv/bin/python benchmarks/probe_cpu.py [--rounds 5] [--probes 40]``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from harness import http_client


class _Live(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:  # quiet
        pass


def _cpu_per_probe(probe: Callable[[str], object], url: str, probes: int) -> float:
    started = time.process_time()
    for _ in range(probes):
        probe(url)
    return (time.process_time() - started) / probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v2/health/live"
    per_call = lambda u: httpx.get(u, timeout=1.0, trust_env=False)  # noqa: E731
    shared = lambda u: http_client.get(u, timeout=1.0)  # noqa: E731
    a: list[float] = []
    b: list[float] = []
    for _ in range(args.rounds):
        a.append(_cpu_per_probe(per_call, url, args.probes))
        b.append(_cpu_per_probe(shared, url, args.probes))
    server.shutdown()
    med_a, med_b = statistics.median(a), statistics.median(b)
    print(f"{args.rounds} rounds of {args.probes} probes each, CPU of the test process per probe (median):")
    print(f"  A httpx.get, a client per call   {med_a * 1000:7.2f} ms")
    print(f"  B harness.http_client (shared)   {med_b * 1000:7.2f} ms")
    print(f"  ratio A/B                        {med_a / med_b:7.1f}x")


if __name__ == "__main__":
    main()
