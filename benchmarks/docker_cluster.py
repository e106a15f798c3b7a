"""How long the docker backend takes: image builds (cold and warm) and a ready cluster.

    python benchmarks/docker_cluster.py [--runs 3] [--workers 3] [--skip-cold]

* cold build: each image built from scratch (``--no-cache``) into a throw-away tag, with an empty
  wheelhouse cache (so ``pip download`` runs too); the shared, tagged images are left alone.
* warm: ``ensure_image`` when an image with the same inputs exists (what every run after the first pays).
* ready: the reference cluster (``ReferenceCluster.start``: gateway, preload, N workers registered holding
  demo v1) on the docker backend, images present (median of the runs; target < 5 s), then teardown.
  Each service's own start (container to health answer) is printed from ``backend.timings``.

Prints figures next to their targets; asserts nothing (the machine's load decides the numbers).
Needs a Docker engine and a base image (``python tools/build_base_image.py`` offline).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fixtures.models import demo_versions
from harness.backends.base import BackendError
from harness.backends.docker import DockerBackend
from harness.docker_images import (
    ImageRecipe,
    assemble_context,
    build_image,
    ensure_image,
    requirements,
    resolve_base_image,
)
from harness.targets.reference import ClusterSpec, ReferenceCluster
from harness.targets.reference.services import IMAGES

READY_TARGET_S = 5.0


def cold_build(client, recipe: ImageRecipe, base: str) -> tuple[float, float]:
    """Seconds for (pip download into an empty cache, docker build --no-cache) of ``recipe``."""
    tag = f"servingbdd/bench-{recipe.kind}:cold"
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache, tempfile.TemporaryDirectory() as ctx:
        previous = os.environ.get("SERVINGBDD_CACHE_DIR")
        os.environ["SERVINGBDD_CACHE_DIR"] = cache
        try:
            began = time.monotonic()
            dockerfile = recipe.resolved_dockerfile()
            assemble_context(Path(ctx), recipe=recipe, dockerfile=dockerfile, reqs=requirements(recipe))
            download = time.monotonic() - began
            began = time.monotonic()
            build_image(Path(ctx), tag=tag, base_image=base, labels={"servingbdd.bench": "1"}, no_cache=True)
            build = time.monotonic() - began
        finally:
            if previous is None:
                os.environ.pop("SERVINGBDD_CACHE_DIR", None)
            else:
                os.environ["SERVINGBDD_CACHE_DIR"] = previous
    with contextlib.suppress(Exception):
        client.images.remove(tag)
    return download, build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold builds (minutes on 2 cores)")
    args = parser.parse_args()

    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
        base = resolve_base_image(client)
    except BackendError as exc:
        print(f"docker_cluster: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"docker_cluster: no Docker engine answers: {exc}", file=sys.stderr)
        return 1
    print(f"base image: {base}")

    if not args.skip_cold:
        for kind, recipe in IMAGES.items():
            download, build = cold_build(client, recipe, base)
            print(f"cold build {kind:8s}: pip download {download:6.1f} s + docker build {build:6.1f} s")
    for kind, recipe in IMAGES.items():
        first = ensure_image(recipe, client=client)
        print(
            f"ensure {kind:8s}: {first.seconds:6.1f} s ({'built' if first.built else 'reused'} {first.tag})"
        )
        warm = ensure_image(recipe, client=client)
        print(f"warm   {kind:8s}: {warm.seconds:6.2f} s (reused: {not warm.built})")

    readies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        root = Path(tmp) / "artifacts"
        demo_versions(root, ("1",))
        for run in range(args.runs):
            backend = DockerBackend(Path(tmp) / f"run-{run}")
            cluster = ReferenceCluster(backend)
            spec = ClusterSpec(
                workers=args.workers, artifact_root=root, preload=[("demo", "1", "demo/1/model.onnx")]
            )
            began = time.monotonic()
            try:
                cluster.start(spec)  # images exist (above): each launch only checks its image's inputs
                readies.append(time.monotonic() - began)
                phases = ", ".join(f"{k} {v:.2f}" for k, v in cluster.startup_timings.items())
                services = ", ".join(f"{k} {v:.2f}" for k, v in backend.timings.items())
                print(f"ready run {run + 1}: {readies[-1]:5.2f} s ({phases}; per service: {services})")
            finally:
                began = time.monotonic()
                cluster.teardown()
                backend.teardown()
                print(f"  teardown: {time.monotonic() - began:5.2f} s")
    if readies:
        median = statistics.median(readies)
        verdict = "within" if median < READY_TARGET_S else "OVER"
        print(
            f"cluster ready (gateway + {args.workers} workers): median {median:.2f} s "
            f"(target < {READY_TARGET_S:.0f} s: {verdict})"
        )
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
