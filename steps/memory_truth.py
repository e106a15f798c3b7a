"""Memory truth: after swaps, each worker holds what the catalog says and its memory comes back.

A worker that keeps an old version (listed or not) after a swap leaks what users pay for. Two views are
judged, each from outside what the worker claims about itself: the versions every worker lists (its own
status, asked directly, and the gateway's registry) against the catalog's production version, and the
resident memory of every worker process, measured by the backend (``/proc`` of the process group on
local, the container's cgroup on docker), against a band the feature states.

Sizes are decimal: 1 MB = 1,000,000 bytes.
"""

from __future__ import annotations

import time

import pytest

from fixtures.large_models import large_model
from harness.drivers.worker import WorkerProbe
from harness.steps_registry import given, then, when
from harness.waiting import poll
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)

MB = 1_000_000

#: Resident memory of each worker before the swaps (service name -> bytes).
RSS_BEFORE = pytest.StashKey[dict[str, int]]()

#: A worker's memory after a release settles within this (the allocator returns pages, threads exit).
SETTLE_S = 10.0
#: The memory is read this many times, this far apart; the lowest reading counts (a request being
#: served at that instant must not make a healthy worker look leaky).
READINGS, READING_GAP_S = 3, 0.3


@given(
    "large {model:w} versions {versions:Versions} of {mb:d} MB",
    example='Given large demo versions "1" and "2" of 60 MB',
    needs=("workers", "memory"),
)
def large_versions(world: World, model: str, versions: tuple[str, ...], mb: int) -> None:
    """Build versions whose weights really take ``mb`` MB in memory (one dense initializer each, read by
    every inference), ready to serve or register; they take the demo model's input and output."""
    for version in versions:
        world.build_artifact(model, version, lambda root, v=version: large_model(root, model, v, mb * MB))


@given(
    'a large {model:w} version "{version}" of {mb:d} MB',
    example='Given a large demo version "1" of 150 MB',
    needs=("workers", "memory"),
)
def large_version(world: World, model: str, version: str, mb: int) -> None:
    """One large version (see the step above), built but not registered."""
    large_versions(world, model, (version,), mb)


def _rss(world: World, name: str) -> int:
    readings = []
    for i in range(READINGS):
        if i:
            time.sleep(READING_GAP_S)
        value = world.memory_usage(name)
        assert value is not None, f"{name} is not running: its memory cannot be measured"
        readings.append(value)
    return min(readings)


def _worker_names(world: World) -> list[str]:
    names = sorted(w.name for w in world.running_workers())
    assert names, "expected running workers to measure, the backend runs none"
    return names


@given(
    "the resident memory of every worker is measured",
    example="Given the resident memory of every worker is measured",
    needs=("workers", "memory"),
)
def measure_rss(world: World) -> None:
    """Read each worker's resident memory from outside the process (the lowest of 3 readings 0.3 s
    apart): the baseline a later step compares against."""
    before = {name: _rss(world, name) for name in _worker_names(world)}
    world.stash[RSS_BEFORE] = before
    print("resident memory before: " + ", ".join(f"{n} {b / MB:.1f} MB" for n, b in before.items()))


@when(
    'I swap {model:w} between versions "{first}" and "{second}" {count:d} times',
    example='When I swap demo between versions "2" and "1" 6 times',
    needs=("admin",),
)
def swap_back_and_forth(world: World, model: str, first: str, second: str, count: int) -> None:
    """Swap to ``first``, then ``second``, then ``first`` ... ``count`` swaps in all, each through the
    gateway's admin API and each required to succeed."""
    for i in range(count):
        version = first if i % 2 == 0 else second
        answer = world.gateway.swap(model, version)
        assert answer.ok, (
            f"swap {i + 1} of {count} (to version {version!r}) failed: {answer.status} {answer.error}"
        )


@then(
    "every worker holds only the production version of {model:w}, as the catalog says",
    example="Then every worker holds only the production version of demo, as the catalog says",
    needs=("workers", "admin"),
)
def holds_only_production(world: World, model: str) -> None:
    """Each running worker, asked itself, has exactly the catalog's production version of the model in
    memory (serving or still being released: an old version waiting for its requests counts), and the
    gateway's registry lists exactly that version on each worker. Released versions have
    ``SETTLE_S`` seconds to go."""
    production = world.gateway.production(model)
    assert production is not None, f"the catalog names no production version of {model}"
    problems = poll(
        lambda: _holding_problems(world, model, production),
        lambda found: not found,
        timeout=SETTLE_S,
        interval=0.2,
    )
    assert not problems, (
        f"the catalog has {model} version {production!r} in production, but after {SETTLE_S:g} s: "
        + "; ".join(problems)
    )


def _holding_problems(world: World, model: str, production: str) -> list[str]:
    problems = []
    for info in world.running_workers():
        status = WorkerProbe(info.name, info.url).status()
        if status is None:
            problems.append(f"{info.name} does not answer its status")
            continue
        held = sorted(str(m.get("version")) for m in status.get("models", []) if m.get("name") == model)
        if held != [production]:
            problems.append(f"{info.name} holds versions {held} in memory")
    for listed in world.gateway.workers():
        versions = sorted(str(m.get("version")) for m in listed.get("models", []) if m.get("name") == model)
        if versions != [production]:
            problems.append(f"the gateway lists {listed.get('name')} with versions {versions}")
    return problems


@then(
    "the resident memory of every worker is within {mb:d} MB of what it was before the swaps",
    example="Then the resident memory of every worker is within 40 MB of what it was before the swaps",
    needs=("workers", "memory"),
)
def rss_within_band(world: World, mb: int) -> None:
    """Each worker's resident memory, measured from outside (lowest of 3 readings), is at most ``mb`` MB
    above its baseline; a worker still above it is measured again for up to ``SETTLE_S`` seconds (memory
    being returned to the system), then judged."""
    before = world.stash.get(RSS_BEFORE, None)
    assert before is not None, "no baseline memory was measured (missing 'Given the resident memory ...')"

    def grown_of(after: dict[str, int]) -> dict[str, int]:
        return {n: after[n] - before[n] for n in before if after[n] - before[n] > mb * MB}

    # no pause between rounds: each round of readings takes its own READING_GAP_S pauses
    after = poll(
        lambda: {name: _rss(world, name) for name in before},
        lambda a: not grown_of(a),
        timeout=SETTLE_S,
        interval=0,
    )
    grown = grown_of(after)
    print("resident memory after: " + ", ".join(
        f"{n} {after[n] / MB:.1f} MB ({(after[n] - before[n]) / MB:+.1f})" for n in before
    ))  # fmt: skip
    assert not grown, f"expected every worker's resident memory within {mb} MB of its baseline; " + "; ".join(
        f"{n} grew by {g / MB:.0f} MB ({before[n] / MB:.0f} MB -> {after[n] / MB:.0f} MB)"
        for n, g in grown.items()
    )
