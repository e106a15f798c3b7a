"""How long a swap and a rollback take under load, next to the seed's bounds (swap < 1 min, rollback < 30 s).

    python benchmarks/swap_rollback.py [--runs 3] [--workers 2] [--users 50] [--backend local|docker]

Per run: a cluster serving demo v1, 50 Locust users (0.1 s think time) on the gateway, then swap to v2 and
roll back to v1. Printed: the gateway's own ``duration_s`` and the admin call's time seen by the client,
plus the requests that failed during each. Asserts nothing (the machine's load decides the numbers); the
features ``hot_swap.feature`` assert the seed's bounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fixtures.models import demo_versions
from harness.load.runner import LoadProfile, LoadRun
from harness.targets.reference import ClusterSpec
from harness.world import World

SWAP_BOUND_S = 60.0
ROLLBACK_BOUND_S = 30.0


def _backend(kind: str, workdir: Path):
    if kind == "docker":
        from harness.backends.docker import DockerBackend

        return DockerBackend(workdir)
    from harness.backends.local import LocalBackend

    return LocalBackend(workdir)


def one_run(scratch: Path, kind: str, workers: int, users: int) -> dict[str, float]:
    artifacts = scratch / "artifacts"
    demo_versions(artifacts, ("1", "2"))
    world = World(_backend(kind, scratch / "cluster"), workdir=scratch / "scenario")
    try:
        world.start_cluster(
            ClusterSpec(
                workers=workers, artifact_root=artifacts, preload=[("demo", "1", "demo/1/model.onnx")]
            )
        )
        assert world.gateway.register_version("demo", "demo/2/model.onnx", version="2").ok
        load = LoadRun.start(
            world.target.inference_url, LoadProfile(users=users, think_s=0.1), scratch / "load"
        )
        world.defer("stop the load", load.stop)
        load.wait_for_samples(200, timeout=60)
        figures: dict[str, float] = {}
        for action, call in (("swap", lambda: world.gateway.swap("demo", "2")),
                             ("rollback", lambda: world.gateway.rollback("demo"))):  # fmt: skip
            before = len(load.samples())
            started = time.time()
            answer = call()
            assert answer.ok, f"{action} failed: {answer.status} {answer.error}"
            load.wait_for_samples(before + 200, timeout=60)
            during = [
                s
                for s in load.samples()
                if s.started >= started - 0.2 and s.started <= started + answer.latency_s
            ]
            figures[f"{action}_gateway_s"] = float(answer.body["duration_s"])
            figures[f"{action}_client_s"] = answer.latency_s
            figures[f"{action}_failed"] = sum(1 for s in during if not s.ok)
            figures[f"{action}_requests"] = len(during)
        return figures
    finally:
        world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-swap-") as tmp:
        for i in range(args.runs):
            figures = one_run(Path(tmp) / f"run-{i}", args.backend, args.workers, args.users)
            runs.append(figures)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in figures.items()), flush=True)  # fmt: skip
    load = os.getloadavg()[0]
    print(f"backend {args.backend}, {args.workers} workers, {args.users} users; cores {os.cpu_count()}, "
          f"load average (1 min) {load:.2f}")  # fmt: skip
    for action, bound in (("swap", SWAP_BOUND_S), ("rollback", ROLLBACK_BOUND_S)):
        client = [r[f"{action}_client_s"] for r in runs]
        gateway = [r[f"{action}_gateway_s"] for r in runs]
        failed = sum(int(r[f"{action}_failed"]) for r in runs)
        print(
            f"{action} under load: median {statistics.median(client):.3f} s seen by the client (max "
            f"{max(client):.3f}), {statistics.median(gateway):.3f} s by the gateway; seed bound {bound:g} s: "
            f"{'met' if max(client) < bound else 'NOT met'}; failed requests during it: {failed}"
        )


if __name__ == "__main__":
    main()
