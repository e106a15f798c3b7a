"""Steps that start and stop workers and compare the gateway's registry with the running processes."""

from __future__ import annotations

import re
from collections import Counter

from harness.backends.base import ServiceInfo
from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import poll

#: A graceful stop must finish well within this (the worker drains in-flight requests first).
STOP_GRACE_S = 10.0


def _by_start_order(workers: list[ServiceInfo]) -> list[ServiceInfo]:
    def key(info: ServiceInfo) -> tuple[int, str]:
        digits = re.findall(r"\d+", info.name)
        return (int(digits[-1]) if digits else 0, info.name)

    return sorted(workers, key=key)


def _victims(world: World, count: int) -> list[ServiceInfo]:
    running = _by_start_order(world.running_workers())
    assert len(running) > count, (
        f"expected more than {count} running workers so that one keeps serving, "
        f"the backend runs {len(running)}: {[w.name for w in running]}"
    )
    return running[:count]  # the oldest ones: the original worker goes too


def label(world: World, name: str) -> str:
    """A worker as errors name it: the feature's name, then the gateway's id (``worker-2 (id w-9b2-1)``)."""
    ids = sorted(str(w.get("id")) for w in world.gateway.workers() if w.get("name") == name)
    known = world.worker_id(name)
    if not ids and known:
        return f"{name} (id {known}, no longer listed)"
    return f"{name} (id {', '.join(ids)})" if ids else f"{name} (not listed by the gateway)"


@given(
    "{count:d} more workers start at the same time",
    example="Given 3 more workers start at the same time",
    needs=("workers",),
)
@when(
    "{count:d} more workers start at the same time",
    example="When 4 more workers start at the same time",
    needs=("workers",),
)
@given("{count:MoreWorkersStart}", example="Given 1 more worker starts", needs=("workers",))
@when("{count:MoreWorkersStart}", example="When 2 more workers start", needs=("workers",))
def add_workers(world: World, count: int) -> None:
    """Start ``count`` worker processes concurrently (named worker-3, worker-4 ... after the ones already
    started); returns once each has registered with the gateway holding the production versions."""
    before = {w.name for w in world.running_workers()}
    names = world.add_workers(count, wait=True)
    after = {w.name for w in world.running_workers()}
    started = after - before
    assert len(started) == count, (
        f"expected {count} new running workers, the backend reports {sorted(started)} new (asked for {names})"
    )


@when(
    "{count:WorkersAre} stopped gracefully",
    example="When 2 workers are stopped gracefully",
    needs=("workers", "lifecycle"),
)
def stop_workers(world: World, count: int) -> None:
    """SIGTERM the oldest ``count`` workers (they drain and deregister); each must exit with code 0."""
    for info in _victims(world, count):
        code = world.stop_service(info.name, grace=STOP_GRACE_S)
        assert code == 0, f"expected {info.name} to exit 0 after a graceful stop, it exited with {code}"


@when("{count:WorkersAre} killed", example="When 1 worker is killed", needs=("workers", "lifecycle"))
def kill_workers(world: World, count: int) -> None:
    """SIGKILL the oldest ``count`` workers (no deregistration: the gateway must expire them)."""
    for info in _victims(world, count):
        code = world.kill_service(info.name)
        assert code is not None, (
            f"expected {info.name} to be dead after SIGKILL, the backend says it still runs"
        )


@given(
    "{worker:WorkerName} is stopped gracefully",
    example="Given worker-2 is stopped gracefully",
    needs=("workers", "lifecycle"),
)
@when(
    "{worker:WorkerName} is stopped gracefully",
    example="When worker-2 is stopped gracefully",
    needs=("workers", "lifecycle"),
)
def stop_worker(world: World, worker: str) -> None:
    """SIGTERM (docker stop) this worker: it drains its in-flight requests, deregisters and must exit 0."""
    name = label(world, worker)
    code = world.stop_service(worker, grace=STOP_GRACE_S)
    assert code == 0, f"expected {name} to exit 0 after a graceful stop, it exited with {code}"


@given("{worker:WorkerName} is killed", example="Given worker-2 is killed", needs=("workers", "lifecycle"))
@when("{worker:WorkerName} is killed", example="When worker-2 is killed", needs=("workers", "lifecycle"))
def kill_worker(world: World, worker: str) -> None:
    """SIGKILL (docker kill) this worker: no drain, no deregistration; the gateway must notice by itself."""
    name = label(world, worker)
    code = world.kill_service(worker)
    assert code is not None, f"expected {name} to be dead after SIGKILL, the backend says it still runs"
    world.mark(f"{worker}_killed")


def _listed(world: World) -> list[dict]:
    return world.gateway.workers()


@then("the gateway lists {count:Workers}", example="Then the gateway lists 5 workers", needs=("admin",))
def gateway_lists(world: World, count: int) -> None:
    """The admin API lists exactly ``count`` registered workers right now."""
    listed = _listed(world)
    assert len(listed) == count, (
        f"expected the gateway to list {count} workers, it lists {len(listed)}: "
        f"{[w.get('name') for w in listed]}"
    )


@then(
    "within {seconds:g} seconds the gateway lists {count:Workers}",
    example="Then within 3 seconds the gateway lists 2 workers",
    needs=("admin",),
)
def gateway_lists_within(world: World, seconds: float, count: int) -> None:
    """Poll the admin API until it lists exactly ``count`` workers, for at most ``seconds``."""
    listed = poll(lambda: _listed(world), lambda ws: len(ws) == count, timeout=seconds)
    assert len(listed) == count, (
        f"expected the gateway to list {count} workers within {seconds:g} s, it still lists {len(listed)}: "
        f"{[(w.get('id'), w.get('name'), w.get('healthy')) for w in listed]}"
    )


@then(
    "every listed worker has its own id", example="Then every listed worker has its own id", needs=("admin",)
)
def unique_ids(world: World) -> None:
    """No two workers in the gateway's registry share an id (or an address)."""
    listed = _listed(world)
    ids = Counter(str(w.get("id")) for w in listed)
    urls = Counter(str(w.get("url")) for w in listed)
    dup_ids = {i: n for i, n in ids.items() if n > 1}
    dup_urls = {u: n for u, n in urls.items() if n > 1}
    assert listed, "expected the gateway to list workers, it lists none"
    assert not dup_ids, f"expected unique worker ids, the gateway lists duplicates {dup_ids}"
    assert not dup_urls, (
        f"expected one registry entry per worker address, the gateway lists duplicates {dup_urls}"
    )


@then(
    'every listed worker holds {model:w} version "{version}"',
    example='Then every listed worker holds demo version "2"',
    needs=("admin", "workers"),
)
def every_worker_holds(world: World, model: str, version: str) -> None:
    """The gateway lists at least one worker, and each worker it lists reports the version loaded when
    asked directly on its own address (not only in the gateway's registry)."""
    from steps.network import probe

    listed = _listed(world)
    assert listed, f"expected the gateway to list workers holding {model} version {version!r}; it lists none"
    missing = []
    for entry in listed:
        name = str(entry.get("name"))
        in_registry = {(m.get("name"), str(m.get("version"))) for m in entry.get("models", [])}
        loaded = probe(world, name).loaded() if name in {w.name for w in world.running_workers()} else None
        if (model, version) not in in_registry or loaded is None or (model, version) not in loaded:
            missing.append(
                f"{name} (id {entry.get('id')}): the gateway lists {sorted(in_registry)}, "
                f"the worker itself reports {sorted(loaded) if loaded is not None else 'nothing (no answer)'}"
            )
    assert not missing, f"expected every listed worker to hold {model} version {version!r}; " + "; ".join(
        missing
    )


@then(
    "the gateway's registry matches the running workers",
    example="Then the gateway's registry matches the running workers",
    needs=("admin", "workers"),
)
def registry_matches(world: World) -> None:
    """The workers the gateway lists are exactly the worker processes that run (no orphans, none missing)."""
    running = Counter(w.name for w in world.running_workers())
    assert running, "expected at least one running worker to compare the registry with; none runs"
    listed = Counter(str(w.get("name")) for w in _listed(world))
    orphans = sorted((listed - running).elements())
    missing = sorted((running - listed).elements())
    assert not orphans and not missing, (
        f"expected the gateway's registry to match the running workers {sorted(running.elements())}; "
        f"it lists workers that do not run {orphans} and misses running ones {missing}"
    )
