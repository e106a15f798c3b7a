"""Steps about memory: a worker's own memory budget (507) and the kernel's memory limit (OOM kill).

Sizes are decimal: 1 MB = 1,000,000 bytes (the worker's budget and its messages count bytes).
"""

from __future__ import annotations

import pytest

from fixtures.large_models import large_model
from harness.drivers.worker import WorkerProbe
from harness.steps_registry import given, then
from harness.waiting import poll
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import kept_answer
from steps.cluster import start_cluster

MB = 1_000_000
#: How long the kernel may take to kill a worker once the swap answered (the load was already under way).
KILL_WAIT_S = 20.0

#: The worker put under a kernel memory limit in this scenario: (service name, gateway id, bytes, mechanism).
_LIMITED_KEY = pytest.StashKey[tuple[str, str, int, str]]()


@given(
    "a cluster with {workers:Workers} with a memory budget of {mb:d} MB "
    'serving {model:w} version "{version}"',
    example='Given a cluster with 1 worker with a memory budget of 100 MB serving demo version "1"',
    needs=("workers", "memory"),
)
def cluster_with_budget(world: World, workers: int, mb: int, model: str, version: str) -> None:
    """Start the cluster; every worker refuses (507) a load that would take it past ``mb`` MB of models."""
    start_cluster(world, workers, model, version, memory_budget=mb * MB)


@given(
    "a cluster with {workers:Workers} without a memory budget serving {model:w} version "
    '"{version}" and a heartbeat every {seconds:g} seconds',
    example='Given a cluster with 2 workers without a memory budget serving demo version "1" '
    "and a heartbeat every 0.5 seconds",
    needs=("workers", "memory"),
)
def cluster_without_budget(world: World, workers: int, model: str, version: str, seconds: float) -> None:
    """Start the cluster with the workers' own budget disabled (0): only the kernel can stop a load."""
    start_cluster(world, workers, model, version, memory_budget=0, heartbeat_interval=seconds)


@given(
    'a large {model:w} version "{version}" of {mb:d} MB is registered in the catalog',
    example='Given a large demo version "3" of 300 MB is registered in the catalog',
    needs=("admin", "workers"),
)
def register_large_version(world: World, model: str, version: str, mb: int) -> None:
    """Build a model whose weights really take ``mb`` MB in memory and register it through the admin API."""
    artifact = world.build_artifact(model, version, lambda root: large_model(root, model, version, mb * MB))
    answer = world.gateway.register_version(model, artifact.artifact_uri, version=version)
    assert answer.ok, (
        f"expected the gateway to register {model} version {version!r} ({artifact.size_bytes} bytes), "
        f"it answered {answer.status}: {answer.error}"
    )


@given(
    "the kernel limits the memory of one worker to {mb:d} MB",
    example="Given the kernel limits the memory of one worker to 150 MB",
    needs=("memory", "workers"),
)
def limit_one_worker(world: World, mb: int) -> None:
    """Put the first worker under a hard memory limit (a cgroup, docker's mem_limit, else RLIMIT_AS): past
    it the kernel kills the process. The mechanism used is printed and named in failures."""
    running = sorted(world.running_workers(), key=lambda w: w.name)
    assert running, "expected a running worker to limit, the backend runs none"
    name = running[0].name
    listed = {str(w.get("name")): str(w.get("id")) for w in world.gateway.workers()}
    assert name in listed, (
        f"expected the gateway to list {name} before limiting it; it lists {sorted(listed)}"
    )
    mechanism = world.limit_memory(name, mb * MB)
    print(f"memory limit of {mb} MB on {name} (gateway id {listed[name]}) by {mechanism}")
    world.stash[_LIMITED_KEY] = (name, listed[name], mb * MB, mechanism)


def _limited_worker(world: World) -> tuple[str, str, int, str]:
    limited = world.stash.get(_LIMITED_KEY, None)
    assert limited is not None, "no worker was put under a memory limit in this scenario"
    return limited


@then(
    "the kernel killed that worker for exceeding its memory limit",
    example="Then the kernel killed that worker for exceeding its memory limit",
    needs=("memory",),
)
def worker_oom_killed(world: World) -> None:
    """The limited worker's process is gone, killed by the kernel's OOM killer (local: SIGKILL and the
    cgroup's oom_kill counter; docker: exit 137 and OOMKilled), not by anyone else."""
    name, _, limit, mechanism = _limited_worker(world)
    still_running = poll(
        lambda: any(w.name == name for w in world.running_workers()),
        lambda running: not running,
        timeout=KILL_WAIT_S,
        interval=0.2,
    )
    assert not still_running, (
        f"expected the kernel to kill {name} (limited to {limit // MB} MB by {mechanism}); "
        f"it still runs after {KILL_WAIT_S:g} s"
        + (": under rlimit a load fails with an allocation error instead" if mechanism == "rlimit" else "")
    )
    code = world.exit_code(name)
    assert world.oom_killed(name), (
        f"expected {name} to have been killed by the kernel for exceeding its {limit // MB} MB limit "
        f"({mechanism}); it exited with code {code} and no OOM kill was recorded"
    )


@then(
    "the swap of {model:w} is refused with an error naming the worker that died",
    example="Then the swap of demo is refused with an error naming the worker that died",
    needs=("admin",),
)
def swap_refused_naming_dead_worker(world: World, model: str) -> None:
    """The gateway answered the swap with a server error (502/503/504) that names the killed worker's id."""
    name, worker_id, _, _ = _limited_worker(world)
    answer = kept_answer(world, "swap")
    assert answer.status in (502, 503, 504), (
        f"expected the swap of {model} to fail with 502/503/504 when {name} died loading it, "
        f"the gateway answered {answer.status}: {answer.error or answer.body}"
    )
    error = answer.error or ""
    assert model in error and worker_id in error, (
        f"expected the swap error to name {model} and the worker that died ({worker_id}); it said {error!r}"
    )
    print(f"the gateway answered {answer.status}: {error}")
    failures = [
        f
        for e in world.gateway.audit()
        if e.get("action") == "swap_failed" and e.get("model") == model
        for f in (e.get("details") or {}).get("failures", [])
    ]
    assert any(str(f.get("worker")) == worker_id for f in failures), (
        f"expected the audit trail to record the failed swap on {worker_id}; its failures: {failures}"
    )


@then(
    "the swap of {model:w} is refused as over the memory budget, naming the model, its size and the budget",
    example="Then the swap of demo is refused as over the memory budget, "
    "naming the model, its size and the budget",
    needs=("admin", "workers"),
)
def swap_refused_over_budget(world: World, model: str) -> None:
    """507 from the gateway, passing on the worker's refusal: the message names the model, the new
    version's size in bytes and the budget in bytes."""
    answer = kept_answer(world, "swap")
    error = answer.error or ""
    assert answer.status == 507, (
        f"expected the swap of {model} to be refused with 507 (insufficient storage: over the memory "
        f"budget), the gateway answered {answer.status}: {error or answer.body}"
    )
    budget_bytes = world.spec.memory_budget if world.spec else 0
    budget = str(budget_bytes)
    # the sizes of the model's versions (the one swapped to is among them; with models already held,
    # a version smaller than the budget can be refused too)
    sizes = {str(a.size_bytes) for (m, _), a in world.artifacts.items() if m == model}
    missing = [
        what
        for what, present in (
            ("the model", model in error),
            ("its size in bytes", any(size in error for size in sizes)),
            (f"the budget ({budget} bytes)", budget in error),
        )
        if not present
    ]
    assert not missing, f"expected the 507 message to name {', '.join(missing)}; it said {error!r}"
    for info in world.running_workers():  # each worker's own account: still within its budget
        status = WorkerProbe(info.name, info.url).status()
        assert status is not None, f"expected {info.name} to answer its status after refusing the load"
        assert "memory_used" in status, f"{info.name} does not report its memory in use: {status}"
        used = int(status["memory_used"])
        assert used <= budget_bytes, f"{info.name} holds {used} bytes of models, over its budget {budget}"


@then(
    'no worker holds {model:w} version "{version}"',
    example='Then no worker holds demo version "3"',
    needs=("admin", "workers"),
)
def no_worker_holds(world: World, model: str, version: str) -> None:
    """A failed load left nothing loaded: no running worker reports the version loaded (each is asked
    itself), and the gateway's registry lists no holder."""
    workers = world.running_workers()
    assert workers, "expected at least one running worker to ask; none runs"
    holders = []
    for info in workers:
        status = WorkerProbe(info.name, info.url).status()
        assert status is not None, f"expected {info.name} to answer its status"
        loaded = [
            m
            for m in status.get("models", [])
            if m.get("name") == model
            and str(m.get("version")) == version
            and m.get("state", "READY") == "READY"
        ]
        if loaded:
            holders.append(info.name)
    listed = [
        str(w.get("name"))
        for w in world.gateway.workers()
        if any(m.get("name") == model and str(m.get("version")) == version for m in w.get("models", []))
    ]
    assert not holders and not listed, (
        f"expected no worker to hold {model} version {version!r}; loaded on {holders}, listed on {listed}"
    )


@then(
    "the killed worker left no process behind",
    example="Then the killed worker left no process behind",
    needs=("lifecycle",),
)
def no_process_left(world: World) -> None:
    """Nothing of the killed worker runs any more: no process in its process group (local), or an exited
    container (docker)."""
    name, _, _, _ = _limited_worker(world)
    info = world.service(name)
    assert not info.running, f"expected {name} to be gone, the backend says it still runs"
    assert not world.process_left(name), f"expected nothing of {name} to run any more; some of it remains"
