"""How much load the harness can put on the reference gateway: 1 vs N load processes vs wrk, and the
harness's p50 vs wrk's at the same request rate. Figures printed, never asserted.

    .venv/bin/python benchmarks/load_capacity.py [--target infer|live] [--users 16] [--seconds 10]
        [--workers 2] [--rounds 1] [--rate-share 0.5]

Starts a real gateway and one worker on 127.0.0.1 (the local backend) holding demo v1, then, on
``POST /v2/models/demo/infer`` (the same body for every generator) or ``GET /v2/health/live``:

1. ceiling: users sending back to back (no think time) for ``--seconds`` from one Locust process, then
   from a master with ``--workers`` worker processes (``--load-workers``), then wrk with as many
   connections (2 threads);
2. p50 at one rate: ``--rate-share`` of the lowest ceiling, the harness pacing each user (Locust's
   constant throughput), wrk pacing each connection with its Lua ``delay`` (adjusted once from a first
   try, since wrk's delay comes on top of the answer's latency).

The harness's latencies come from its raw samples (nearest rank, :mod:`harness.slo`), wrk's from its
own histogram. On a 2-core machine the generators share the cores with the gateway and the worker:
that limit is part of what is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from fixtures.models import demo_versions
from harness.backends.local import LocalBackend
from harness.load.endpoints import Endpoint
from harness.load.runner import LoadProfile, LoadRun, check_host
from harness.load.schedule import sustained
from harness.slo import LatencySummary
from harness.targets.reference import ClusterSpec, ReferenceCluster

#: ``--target``: the endpoint measured (method, path, with the demo body or none). ``live`` costs the
#: gateway almost nothing, so there the load generators, not the services, set the ceiling.
TARGETS = {"infer": ("POST", "/v2/models/demo/infer", True), "live": ("GET", "/v2/health/live", False)}
_PROFILES = Path(__file__).resolve().parents[1] / "fixtures" / "load_profiles.toml"
_WRK_LUA = """
wrk.method = "{method}"
{body_line}
local pause = {delay_ms}
function delay() return pause end
done = function(summary, latency, requests)
  io.write(string.format("WRKRESULT %d %d %f %f %f\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1e6, latency:percentile(99) / 1e6))
end
"""


def _body() -> dict:
    """The demo infer body of the shipped profiles: the same one for the harness and for wrk."""
    data = tomllib.loads(_PROFILES.read_text())
    return json.loads(data["endpoints"]["infer"]["body"].replace("{model}", "demo"))


def run_harness(
    url: str,
    target: str,
    users: int,
    seconds: int,
    workdir: Path,
    *,
    workers: int = 0,
    user_rate: float | None = None,
) -> dict:
    method, path, with_body = TARGETS[target]
    profile = LoadProfile(
        users=users,
        endpoints=(Endpoint(target, 1, method, path, _body() if with_body else None),),
        schedule=sustained(users, seconds),
        user_rate=user_rate,
        load_workers=workers,
        timeout_s=10,
    )
    run = LoadRun.start(url, profile, workdir)
    try:
        run.wait(timeout=seconds + 90)
    finally:
        run.stop()
    samples = run.samples()
    if not samples:
        raise RuntimeError(f"the harness produced no samples:\n{run.log_tail}")
    # the rate over the steady part: from the last user's first request to the end
    span = max(o.ended for o in samples) - min(o.started for o in samples)
    summary = LatencySummary.of(samples, ok_only=True)
    return {
        "requests": len(samples),
        "errors": sum(1 for o in samples if not o.ok),
        "rps": len(samples) / span,
        "p50": summary.p50,
        "p99": summary.p99,
    }


def run_wrk(
    url: str, target: str, connections: int, seconds: int, workdir: Path, delay_ms: float = 0.0
) -> dict:
    method, path, with_body = TARGETS[target]
    body_line = (
        f'wrk.body = [==[{json.dumps(_body())}]==]\nwrk.headers["Content-Type"] = "application/json"'
        if with_body
        else ""
    )
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    script = workdir / "wrk.lua"
    script.write_text(_WRK_LUA.format(method=method, body_line=body_line, delay_ms=f"{delay_ms:.3f}"))
    out = subprocess.run(
        [
            wrk,
            "-t",
            str(min(2, connections)),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            str(script),
            url + path,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKRESULT")), None)
    if line is None:
        raise RuntimeError(f"no result line from wrk:\n{out}")
    requests, errors, duration, p50, p99 = line.split()[1:]
    return {
        "requests": int(requests),
        "errors": int(errors),
        "rps": int(requests) / float(duration),
        "p50": float(p50),
        "p99": float(p99),
    }


def _median_round(results: list[dict]) -> dict:
    """The round with the median request rate (its own latencies with it)."""
    return sorted(results, key=lambda r: r["rps"])[len(results) // 2]


def _ms(value: float | None) -> str:
    return "     n/a" if value is None else f"{value * 1000:7.2f} ms"


def _line(label: str, r: dict) -> None:
    print(
        f"  {label:34s} {r['rps']:8.1f} req/s  requests {r['requests']:7d}  errors {r['errors']:4d}"
        f"  p50 {_ms(r['p50'])}  p99 {_ms(r['p99'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16, help="Locust users = wrk connections")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="Locust worker processes in the N-process run")
    parser.add_argument("--target", choices=sorted(TARGETS), default="infer", help="the endpoint measured")
    parser.add_argument("--rounds", type=int, default=1, help="ceiling rounds; the median round is shown")
    parser.add_argument(
        "--rate-share", type=float, default=0.5, help="the paced rate, as a share of the ceiling"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        workdir = Path(tmp)
        demo_versions(workdir / "artifacts", ("1",))
        backend = LocalBackend(workdir / "cluster")
        try:
            cluster = ReferenceCluster(backend)
            cluster.start(
                ClusterSpec(
                    workers=1,
                    artifact_root=workdir / "artifacts",
                    preload=[("demo", "1", "demo/1/model.onnx")],
                )
            )
            url = check_host(cluster.gateway_url, loopback_only=True)
            run_harness(url, args.target, 2, 2, workdir)  # warm-up: lazy initialisation in the services
            rounds = []
            for _ in range(args.rounds):  # alternating, so that a noisy neighbour hurts every generator
                rounds.append(
                    (
                        run_harness(url, args.target, args.users, args.seconds, workdir),
                        run_harness(
                            url, args.target, args.users, args.seconds, workdir, workers=args.workers
                        ),
                        run_wrk(url, args.target, args.users, args.seconds, workdir),
                    )
                )
            one, many, wrk = (_median_round([r[i] for r in rounds]) for i in range(3))
            rate = args.rate_share * min(one["rps"], many["rps"], wrk["rps"])
            paced = run_harness(
                url, args.target, args.users, args.seconds, workdir, user_rate=rate / args.users
            )
            delay = args.users / rate * 1000  # per connection, before the answer's latency is counted
            first = run_wrk(url, args.target, args.users, args.seconds, workdir, delay_ms=delay)
            delay = max(0.0, delay - (args.users / first["rps"] * 1000 - delay))
            wrk_paced = run_wrk(url, args.target, args.users, args.seconds, workdir, delay_ms=delay)
        finally:
            backend.teardown()

    print(
        f"reference gateway + 1 worker (demo v1) on 127.0.0.1; {' '.join(TARGETS[args.target][:2])};"
        f" {args.users} users/connections,"
    )
    print(f"{args.seconds} s per run, on a machine with the generators and the services sharing its cores")
    print(f"ceiling (back to back; median of {args.rounds} round(s)):")
    _line("harness, 1 Locust process", one)
    _line(f"harness, master + {args.workers} workers", many)
    _line("wrk (2 threads)", wrk)
    print(
        f"  N/1 processes: {many['rps'] / one['rps']:.2f}x; harness 1 proc / wrk:"
        f" {one['rps'] / wrk['rps']:.2f}; {args.workers} workers / wrk: {many['rps'] / wrk['rps']:.2f}"
    )
    print(f"at one rate (target {rate:.0f} req/s, {args.rate_share:.0%} of the lowest ceiling):")
    _line("harness, paced users", paced)
    _line(f"wrk, paced connections ({delay:.1f} ms delay)", wrk_paced)
    if paced["p50"] and wrk_paced["p50"]:
        print(
            f"  p50 ratio harness/wrk: {paced['p50'] / wrk_paced['p50']:.2f}"
            f" (rates {paced['rps']:.0f} vs {wrk_paced['rps']:.0f} req/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
