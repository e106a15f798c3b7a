"""The World: LIFO cleanup that survives failures, and backend actions that really act and are traced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import trace
from harness.backends.local import LocalBackend
from harness.targets.reference import ClusterSpec, ReferenceTarget
from harness.world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(LocalBackend(tmp_path / "cluster"), workdir=tmp_path / "scenario")
    yield w
    w.close()


def test_close_runs_undo_actions_newest_first_and_survives_failing_ones(world: World) -> None:
    ran: list[str] = []

    def failing() -> None:
        ran.append("b")
        raise RuntimeError("link already healed")

    world.defer("a", lambda: ran.append("a"))
    world.defer("b", failing)
    world.defer("c", lambda: ran.append("c"))
    errors = world.close()
    assert ran == ["c", "b", "a"]
    assert errors == ["b: link already healed"]
    assert world.close() == []  # nothing left to undo


def test_gateway_needs_a_started_cluster(world: World) -> None:
    assert isinstance(world.target, ReferenceTarget)  # the default target
    with pytest.raises(RuntimeError, match="needs a cluster, and none was started: add a step like"):
        _ = world.gateway


def test_backend_actions_act_on_real_processes_and_touch_the_trace(
    world: World,
    make_demo_spec: Callable[..., ClusterSpec],
    process_state: Callable[[int], str],
    pid_gone: Callable[[int], bool],
) -> None:
    world.prepare_models("demo", ("1", "2"))  # into the target's artifact root, where it reads its models
    world.start_cluster(make_demo_spec(workers=2, artifact_root=world.reference.artifact_root))
    assert world.gateway.infer("demo").model_version == "1"

    with trace.step("when", "worker-1 is killed", "f.feature:1", "steps/x.py:1") as record:
        assert world.kill_service("worker-1") == -9
    assert record.touches == 1 and record.kinds == ["backend"]
    assert [s.name for s in world.running_workers()] == ["worker-2"]

    world.restart_service("worker-1")
    assert [s.name for s in world.running_workers()] == ["worker-1", "worker-2"]
    assert world.add_workers(1) == ["worker-3"]
    assert len(world.gateway.workers()) >= 3  # the killed worker-1 may not have expired yet

    assert world.stop_service("worker-3", grace=5.0) == 0
    assert "worker-3" not in [w["name"] for w in world.gateway.workers()]

    pid = int(world.backend.service("worker-2").ident)
    world.pause("worker-2")
    assert process_state(pid) == "T"
    pids = [int(s.ident) for s in world.backend.services() if s.running]

    assert world.close() == []  # resumes worker-2, closes the client, tears the cluster down
    assert all(pid_gone(p) for p in pids)


def test_resume_then_close_is_harmless(world: World, make_demo_spec: Callable[..., ClusterSpec]) -> None:
    world.prepare_models("demo", ("1", "2"))
    world.start_cluster(make_demo_spec(workers=1, artifact_root=world.reference.artifact_root))
    world.pause("worker-1")
    world.resume("worker-1")
    assert world.gateway.ready().status == 200
    assert world.close() == []
