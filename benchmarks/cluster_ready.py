"""How fast the local backend makes a cluster ready, and what the harness adds per scenario.

    python benchmarks/cluster_ready.py [--runs 5] [--workers 3]

* ready: the reference cluster (``World.start_cluster``: gateway, preload, N workers registered holding
  demo v1) on the local backend, artifacts already built (median of the runs; target < 2 s).
* overhead: what a scenario costs beyond starting the services: creating the World and closing it
  (undo actions + process teardown) (median; target < 0.5 s).

Prints the figures next to their targets; asserts nothing (the machine's load decides the numbers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fixtures.models import demo_versions
from harness.backends.local import LocalBackend
from harness.report.resources import proc_reading
from harness.targets.reference import ClusterSpec
from harness.world import World

READY_TARGET_S = 2.0
OVERHEAD_TARGET_S = 0.5


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a service (with its children) has used so far (Linux /proc)."""
    reading = proc_reading(pid)
    return reading[0] if reading else float("nan")


def one_scenario(scratch: Path, artifact_root: Path, workers: int) -> tuple[float, float, dict[str, float]]:
    """(seconds to ready, seconds of harness overhead, start phases) for one World-driven scenario."""
    # The scenario's artifact root (where the reference target reads its models) is the shared, built one.
    (scratch / "scenario").mkdir(parents=True)
    (scratch / "scenario" / "artifacts").symlink_to(artifact_root, target_is_directory=True)
    t0 = time.perf_counter()
    backend = LocalBackend(scratch / "cluster")
    world = World(backend, workdir=scratch / "scenario")
    preload = [("demo", "1", "demo/1/model.onnx")]
    spec = ClusterSpec(workers=workers, artifact_root=world.reference.artifact_root, preload=preload)
    t1 = time.perf_counter()
    world.start_cluster(spec)
    t2 = time.perf_counter()
    phases = dict(world.reference.cluster.startup_timings)
    phases["services_cpu_s"] = sum(cpu_seconds(int(s.ident)) for s in backend.services())
    assert world.gateway.infer("demo").ok, "the cluster does not serve"
    t3 = time.perf_counter()
    errors = world.close()
    t4 = time.perf_counter()
    if errors:
        raise SystemExit(f"teardown errors: {errors}")
    return t2 - t1, (t1 - t0) + (t4 - t3), phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ready-") as tmp:
        root = Path(tmp)
        demo_versions(root / "artifacts", ("1",))
        ready, overhead, cpu = [], [], []
        for run in range(args.runs):
            r, o, phases = one_scenario(root / f"run-{run}", root / "artifacts", args.workers)
            ready.append(r)
            overhead.append(o)
            cpu.append(phases["services_cpu_s"])
            steps = ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
            print(f"run {run + 1}: ready {r:.3f} s ({steps}), overhead {o:.3f} s", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    med_ready, med_overhead = statistics.median(ready), statistics.median(overhead)
    print(f"cores: {os.cpu_count()}, load average (1 min): {load:.2f}")
    print(
        f"ready (gateway + {args.workers} workers), median of {args.runs}: {med_ready:.3f} s "
        f"(min {min(ready):.3f}, max {max(ready):.3f}); target < {READY_TARGET_S} s: "
        f"{'met' if med_ready < READY_TARGET_S else 'NOT met'}"
    )
    med_cpu = statistics.median(cpu)
    print(
        f"CPU the services burn to get ready, median: {med_cpu:.2f} CPU-s; on {os.cpu_count()} idle cores "
        f"that alone is >= {med_cpu / (os.cpu_count() or 1):.2f} s of the ready time "
        "(the machine's load decides the rest)"
    )
    print(
        f"harness overhead per scenario (World creation + close), median: {med_overhead:.3f} s "
        f"(max {max(overhead):.3f}); target < {OVERHEAD_TARGET_S} s: "
        f"{'met' if med_overhead < OVERHEAD_TARGET_S else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
