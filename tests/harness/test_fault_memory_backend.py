"""Memory limits on a real local cluster: the kernel OOM-kills a worker that loads a model past its limit."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.large_models import large_model
from harness.backends.local import LocalBackend
from harness.drivers.gateway import GatewayClient
from harness.faults.memory import detect_mechanism
from harness.observations import Observations
from harness.targets.reference import ClusterSpec, ReferenceCluster
from harness.targets.reference.models import model_spec
from harness.waiting import poll

MB = 1_000_000
pytestmark = pytest.mark.slow


def _gateway(cluster: ReferenceCluster) -> GatewayClient:
    assert cluster.spec is not None and cluster.spec.artifact_root is not None
    root = cluster.spec.artifact_root
    return GatewayClient(
        cluster.gateway_url,
        admin_token=cluster.spec.admin_token,
        models=lambda name: model_spec(root, name),
        observations=Observations(),
        timeout=120.0,
    )


def _wait_exit(backend: LocalBackend, name: str, timeout: float = 20.0) -> int | None:
    return poll(lambda: backend.exit_code(name), lambda code: code is not None, timeout=timeout)


@pytest.mark.skipif(not detect_mechanism().startswith("cgroup"), reason="needs a writable memory cgroup")
def test_a_worker_loading_past_its_limit_is_oom_killed_and_the_limit_is_lifted(
    local_backend: LocalBackend,
    start_local_cluster: Callable[[ClusterSpec], ReferenceCluster],
    make_demo_spec,
    demo_artifact_root: Path,
) -> None:
    big = large_model(demo_artifact_root, "demo", "big300", 300 * MB)
    cluster = start_local_cluster(make_demo_spec(workers=1))
    gateway = _gateway(cluster)
    try:
        assert gateway.register_version("demo", big.artifact_uri, version="big300").ok
        mechanism = local_backend.limit_memory("worker-1", 150 * MB)
        assert mechanism == detect_mechanism()
        limit = local_backend.memory_limits.limit("worker-1")
        assert limit is not None and limit.cgroup is not None and limit.cgroup.is_dir()
        assert not local_backend.oom_killed("worker-1")  # alive: no kill yet

        worker_id = cluster.worker_id("worker-1")
        answer = gateway.swap("demo", "big300")
        code = _wait_exit(local_backend, "worker-1")

        assert not answer.ok, f"the swap succeeded on a worker limited to 150 MB: {answer.body}"
        assert code == -signal.SIGKILL, f"expected the kernel's SIGKILL, exit code {code}"
        assert local_backend.oom_killed("worker-1"), f"no OOM kill counted in {limit.cgroup}"
        assert worker_id and worker_id in (answer.error or ""), (
            f"the gateway's error does not name the worker {worker_id}: {answer.error}"
        )
    finally:
        gateway.close()
        local_backend.teardown()
    assert not limit.cgroup.exists(), f"the cgroup {limit.cgroup} was left behind"


def test_a_limit_survives_a_restart_and_a_plain_kill_is_not_an_oom_kill(
    local_backend: LocalBackend,
    start_local_cluster: Callable[[ClusterSpec], ReferenceCluster],
    make_demo_spec,
) -> None:
    cluster = start_local_cluster(make_demo_spec(workers=1))
    local_backend.limit_memory("worker-1", 400 * MB)
    limit = local_backend.memory_limits.limit("worker-1")
    assert limit is not None
    assert local_backend.kill("worker-1") == -signal.SIGKILL
    assert not local_backend.oom_killed("worker-1"), "a SIGKILL from us was taken for an OOM kill"

    cluster.restart("worker-1")
    pid = int(local_backend.service("worker-1").ident)
    if limit.cgroup is not None:
        assert str(pid) in (limit.cgroup / "cgroup.procs").read_text().split(), "restart escaped the limit"
    else:
        import resource

        assert resource.prlimit(pid, resource.RLIMIT_AS)[0] == 400 * MB

    assert local_backend.limit_memory("worker-1", None) == "none"
    if limit.cgroup is not None:
        assert not limit.cgroup.exists()
    assert local_backend.exit_code("worker-1") is None, "lifting the limit must not stop the worker"


@pytest.mark.skipif(not detect_mechanism().startswith("cgroup"), reason="needs a writable memory cgroup")
def test_empty_cgroups_left_by_a_dead_run_are_swept_but_recent_or_busy_ones_are_not() -> None:
    import subprocess
    import sys

    from harness.faults.memory import limit_process
    from harness.faults.service_memory import sweep_stale_cgroups

    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    left, held = limit_process(dead.pid, 100 * MB), limit_process(busy.pid, 100 * MB)
    try:
        dead.kill()
        dead.wait()
        assert left.cgroup is not None and held.cgroup is not None
        parent = left.cgroup.parent  # sweep only our two groups: other runs' cgroups are not ours
        assert not sweep_stale_cgroups(parent, pattern=left.cgroup.name), "a recent cgroup was swept"
        assert sweep_stale_cgroups(parent, older_than_s=0, pattern=left.cgroup.name) == [left.cgroup]
        assert not left.cgroup.exists()
        assert not sweep_stale_cgroups(parent, older_than_s=0, pattern=held.cgroup.name)
        assert held.cgroup.exists(), "a cgroup holding a process was swept"
    finally:
        busy.kill()
        busy.wait()
        left.remove()
        held.remove()
