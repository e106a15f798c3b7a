"""Failover and failback of the provider lock on a real local cluster, with clients sending all along.

    python benchmarks/failover.py [--fault kill|503|429|partition] [--rate 50] [--hold 4] [--threshold 3]

Starts a gateway with two pools ("primary": 2 workers, "backup": 1 worker), gives demo both providers,
then sends paced requests (``--rate`` per second, open loop, from threads of this process) while it:
applies the fault to every primary worker, waits for the failover, heals the primary (restart / stop
shedding / heal the links) and waits for the failback. Prints the failover time (fault -> switch, from
the gateway's audit trail), the failback time (healed -> switch) against the hold time, what the
clients saw (errors by status and provider), and the audit trail. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from fixtures.models import demo_versions
from harness.backends.local import LocalBackend
from harness.drivers.gateway import Answer
from harness.drivers.worker import WorkerProbe
from harness.targets.reference import ClusterSpec
from harness.world import World


def send_paced(world: World, rate: float, stop: threading.Event, out: list[tuple[float, Answer]]) -> None:
    interval, due = 1.0 / rate, time.perf_counter()
    while not stop.is_set():
        due += interval
        out.append((time.time(), world.gateway.infer("demo")))
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


def wait_for(what: str, check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", choices=("kill", "503", "429", "partition"), default="kill")
    parser.add_argument("--rate", type=float, default=50.0, help="client requests per second")
    parser.add_argument("--hold", type=float, default=4.0, help="failback hold time, seconds")
    parser.add_argument("--threshold", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        scratch = Path(tmp)
        world = World(LocalBackend(scratch / "cluster"), workdir=scratch / "scenario")
        try:
            artifact = demo_versions(world.workdir / "artifacts", ("1",))["1"]
            spec = ClusterSpec(
                workers=0,
                upstream_timeout=1.0,
                artifact_root=world.workdir / "artifacts",
                preload=[("demo", "1", artifact.artifact_uri)],
                fault_links=args.fault == "partition",
            )
            world.start_cluster(spec)
            pools = {
                "primary": world.add_workers(2, pool="primary"),
                "backup": world.add_workers(1, pool="backup"),
            }
            config = {
                "providers": [{"name": n, "pool": n} for n in pools],
                "failure_threshold": args.threshold,
                "hold_s": args.hold,
                "probe_interval_s": 0.25,
                "probe_timeout_s": 1.0,
            }
            assert world.gateway.configure_providers("demo", config).ok
            wait_for(
                "healthy providers",
                lambda: all(p["health"]["healthy"] for p in world.gateway.providers("demo")["providers"]),
            )
            answers: list[tuple[float, Answer]] = []
            stop = threading.Event()
            sender = threading.Thread(target=send_paced, args=(world, args.rate, stop, answers), daemon=True)
            sender.start()
            time.sleep(2.0)

            def probe(name: str) -> WorkerProbe:
                return WorkerProbe(name, world.service(name).url)

            fault_at = time.time()
            for name in pools["primary"]:
                if args.fault == "kill":
                    world.kill_service(name)
                elif args.fault == "partition":
                    world.partition("gateway", name)
                else:
                    probe(name).shed(int(args.fault), join_token=spec.join_token)
            wait_for("the failover", lambda: world.gateway.providers("demo")["lock"]["active"] == "backup")
            time.sleep(2.0)
            healed_at = time.time()
            for name in pools["primary"]:
                if args.fault == "kill":
                    world.restart_service(name)
                elif args.fault == "partition":
                    world.heal("gateway", name)
                else:
                    probe(name).shed(None, join_token=spec.join_token)
            wait_for("the failback", lambda: world.gateway.providers("demo")["lock"]["active"] == "primary")
            time.sleep(2.0)
            stop.set()
            sender.join(timeout=30)

            trail = world.gateway.failover_audit("demo")["entries"]
            failover = next(e for e in trail if e["action"] == "failover")
            failback = next(e for e in trail if e["action"] == "failback")
            errors = [(t, a) for t, a in answers if not a.ok]
            after_fault = [a for t, a in answers if t >= fault_at]
            print(
                f"fault: {args.fault} on 2 primary workers; {args.rate:g} req/s; threshold {args.threshold}"
            )
            print(f"failover: {failover['t'] - fault_at:.3f} s after the fault ({failover['reason']})")
            print(
                f"failback: {failback['t'] - healed_at:.3f} s after the primary was healed "
                f"(hold {args.hold:g} s)"
            )
            print(
                f"clients: {len(answers)} requests, {len(errors)} errors "
                f"{dict(Counter((a.status, a.provider) for _, a in errors))}; "
                f"answers after the fault by provider {dict(Counter(a.provider for a in after_fault))}"
            )
            slow = max((a.latency_s for a in after_fault), default=0.0)
            print(f"slowest answer after the fault: {slow * 1000:.0f} ms")
            print("audit trail:")
            for e in trail:
                counters = {
                    k: (v["successes"], v["total_failures"], v["client_errors"])
                    for k, v in e["counters"].items()
                }
                moved = f"{e.get('from_provider', '-')} -> {e['provider']}"
                print(
                    f"  #{e['id']} {e['at']} {e['action']:<13} {moved:<20} {e['reason'][:90]}  "
                    f"ok/fail/4xx {counters}"
                )
        finally:
            world.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
