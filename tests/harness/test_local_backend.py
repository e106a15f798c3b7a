"""The local backend running the real reference cluster (gateway + workers as subprocesses), started
and registered by :class:`harness.targets.reference.ReferenceCluster`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fixtures.models import missing_artifact_uri
from harness.backends.base import BackendError, ServiceInfo, ServiceSpec
from harness.backends.local import LocalBackend
from harness.backends.select import choose, docker_available, make_backend
from harness.processes import live_processes
from harness.targets.base import TargetError
from harness.targets.reference import ClusterSpec, ReferenceCluster
from harness.waiting import WaitTimeout, until

TOKEN = "test-admin-token"


def listed_workers(cluster: ReferenceCluster) -> list[dict]:
    resp = httpx.get(
        f"{cluster.gateway_url}/admin/workers", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return body["workers"] if isinstance(body, dict) else body


def listed_ids(cluster: ReferenceCluster) -> set[str]:
    return {w["id"] for w in listed_workers(cluster)}


def workers(backend: LocalBackend) -> list[ServiceInfo]:
    return [s for s in backend.services() if s.kind == "worker"]


def all_logs(backend: LocalBackend, tail: int = 3000) -> str:
    return "\n".join(f"--- {s.name}\n{backend.logs(s.name)[-tail:]}" for s in backend.services())


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, details: Callable[[], str] = str
) -> float:
    """Poll ``predicate``; return the seconds it took; fail saying ``what`` did not happen (+ details)."""
    started = time.monotonic()
    try:
        until(predicate, timeout=timeout, what=what)
    except WaitTimeout as exc:
        pytest.fail(f"{exc}\n{details()}")
    return time.monotonic() - started


def test_start_registers_every_worker_holding_production(local_cluster: ReferenceCluster) -> None:
    backend = local_cluster.backend
    names = [s.name for s in backend.services()]
    assert names == ["gateway", "worker-1", "worker-2"]
    assert all(s.running for s in backend.services())
    assert [s.kind for s in backend.services()] == ["gateway", "worker", "worker"]

    workers_listed = listed_workers(local_cluster)
    assert sorted(w["name"] for w in workers_listed) == ["worker-1", "worker-2"]
    for worker in workers_listed:
        assert {"name": "demo", "version": "1"} in worker["models"]
    assert {local_cluster.worker_id("worker-1"), local_cluster.worker_id("worker-2")} == listed_ids(
        local_cluster
    )
    assert local_cluster.gateway_url == backend.url("gateway") == backend.service("gateway").url
    assert httpx.get(f"{local_cluster.gateway_url}/v2/health/ready", timeout=5).status_code == 200
    assert f"listening on {local_cluster.gateway_url}" in backend.logs("gateway")
    gateway_pid = backend.service("gateway").ident
    assert TOKEN.encode() not in Path(f"/proc/{gateway_pid}/cmdline").read_bytes()  # not visible in `ps`
    assert backend.logs("worker-1").startswith("--- harness: starting worker-1")
    assert set(local_cluster.startup_timings) == {"gateway_live_s", "preload_s", "workers_registered_s"}
    assert set(backend.timings) == {"gateway", "worker-1", "worker-2"}


def test_kill_gives_minus_nine_and_the_registry_expires_the_worker(local_cluster: ReferenceCluster) -> None:
    backend = local_cluster.backend
    victim = local_cluster.worker_id("worker-1")
    assert backend.kill("worker-1") == -9
    assert backend.exit_code("worker-1") == -9
    assert not backend.service("worker-1").running
    assert victim in listed_ids(local_cluster), "a killed worker cannot deregister: it stays until expiry"
    took = wait_for(lambda: victim not in listed_ids(local_cluster), 15, f"expiry of {victim}")
    assert took > 0.3, "removed before any heartbeat could be missed"
    assert local_cluster.worker_id("worker-2") in listed_ids(local_cluster)
    with pytest.raises(BackendError, match="not running"):
        backend.kill("worker-1")


def test_graceful_stop_exits_zero_and_deregisters_at_once(local_cluster: ReferenceCluster) -> None:
    backend = local_cluster.backend
    leaving = local_cluster.worker_id("worker-2")
    assert backend.stop("worker-2", grace=5.0) == 0
    assert backend.exit_code("worker-2") == 0
    assert leaving not in listed_ids(local_cluster)
    assert len(listed_ids(local_cluster)) == 1


def test_restart_is_a_fresh_process_on_the_same_port_with_a_new_id(local_cluster: ReferenceCluster) -> None:
    backend = local_cluster.backend
    before = backend.service("worker-1")
    old_id = local_cluster.worker_id("worker-1")
    backend.kill("worker-1")
    local_cluster.restart("worker-1")
    after = backend.service("worker-1")
    assert after.running and after.url == before.url and after.ident != before.ident
    new_id = local_cluster.worker_id("worker-1")
    assert new_id and new_id != old_id
    mine = [w for w in listed_workers(local_cluster) if w["id"] == new_id]
    assert mine and mine[0]["url"] == before.url
    assert {"name": "demo", "version": "1"} in mine[0]["models"]
    assert backend.logs("worker-1").count("--- harness: starting worker-1") == 2


def test_restart_of_a_running_gateway_keeps_its_address(local_cluster: ReferenceCluster) -> None:
    backend = local_cluster.backend
    url, pid = local_cluster.gateway_url, backend.service("gateway").ident
    local_cluster.restart("gateway")
    assert local_cluster.gateway_url == url and backend.service("gateway").ident != pid
    # the fresh gateway forgot its workers; their next heartbeat is answered 404 and they register again
    wait_for(
        lambda: {w["url"] for w in listed_workers(local_cluster)} == {w.url for w in workers(backend)},
        15,
        "the workers registering again",
        lambda: all_logs(backend),
    )


def test_pause_stops_the_process_and_resume_continues_it(
    local_cluster: ReferenceCluster, process_state: Callable[[int], str]
) -> None:
    backend = local_cluster.backend
    pid = int(backend.service("worker-1").ident)
    backend.pause("worker-1")
    assert process_state(pid) == "T"
    assert backend.paused("worker-1")
    url = backend.service("worker-1").url
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{url}/v2/health/live", timeout=0.5)
    backend.resume("worker-1")
    assert process_state(pid) in {"S", "R"}
    assert httpx.get(f"{url}/v2/health/live", timeout=5).status_code == 200
    assert backend.exit_code("worker-1") is None


def test_add_workers_starts_them_concurrently_and_awaits_registration(
    local_cluster: ReferenceCluster,
) -> None:
    started = time.monotonic()
    assert local_cluster.add_workers(2) == ["worker-3", "worker-4"]
    took = time.monotonic() - started
    assert len(listed_ids(local_cluster)) == 4
    assert local_cluster.worker_id("worker-3") in listed_ids(local_cluster)
    assert took < 20


def test_teardown_kills_every_process_even_paused_ones(
    local_cluster: ReferenceCluster, pid_gone: Callable[[int], bool]
) -> None:
    backend = local_cluster.backend
    pids = [int(s.ident) for s in backend.services()]
    backend.pause("worker-2")
    backend.teardown()
    assert all(pid_gone(pid) for pid in pids), [p for p in pids if not pid_gone(p)]
    assert not any(p.pid in pids for p in live_processes())
    assert not any(s.running for s in backend.services())
    backend.teardown()  # idempotent


def test_a_second_service_under_a_taken_name_is_refused(local_cluster: ReferenceCluster) -> None:
    spec = local_cluster.backend.spec("worker-1")
    with pytest.raises(BackendError, match="a service named 'worker-1' already runs"):
        local_cluster.backend.launch(spec)
    with pytest.raises(BackendError, match="no service named 'worker-9'"):
        local_cluster.backend.kill("worker-9")


def test_a_failing_preload_is_reported_with_the_gateway_answer(
    start_local_cluster: Callable[[ClusterSpec], ReferenceCluster], make_demo_spec: Callable[..., ClusterSpec]
) -> None:
    spec = make_demo_spec(workers=1)
    spec.preload = [("demo", "9", missing_artifact_uri("demo", "9"))]
    with pytest.raises(TargetError, match=r"registering demo v9 .* failed: 404"):
        start_local_cluster(spec)


def test_a_service_that_dies_at_start_is_reported_with_its_log(
    start_local_cluster: Callable[[ClusterSpec], ReferenceCluster], make_demo_spec: Callable[..., ClusterSpec]
) -> None:
    spec = make_demo_spec(workers=1)
    spec.admin_token = ""  # the gateway refuses to start without one
    began = time.monotonic()
    with pytest.raises(BackendError, match="gateway exited") as err:
        start_local_cluster(spec)
    assert "last lines of its log" in str(err.value)
    assert time.monotonic() - began < 25, "a dead service must fail the wait at once, not at its timeout"


def test_a_service_that_never_answers_is_reported_with_the_cpu_it_used(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, startup_timeout=2.0)
    silent = ServiceSpec(
        "silent", "test", lambda _p: [sys.executable, "-c", "import time; time.sleep(60)"], image=None
    )
    try:
        with pytest.raises(BackendError, match=r"used \d+\.\d s of CPU: starved of CPU or blocked"):
            backend.launch(silent)
    finally:
        backend.teardown()


def test_the_startup_timeout_can_be_set_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVINGBDD_STARTUP_TIMEOUT_S", "7.5")
    assert make_backend("local", tmp_path).startup_timeout == 7.5
    monkeypatch.setenv("SERVINGBDD_STARTUP_TIMEOUT_S", "soon")
    with pytest.raises(BackendError, match="SERVINGBDD_STARTUP_TIMEOUT_S='soon'"):
        make_backend("local", tmp_path)


def test_make_backend_by_name(tmp_path: Path) -> None:
    assert isinstance(make_backend("local", tmp_path), LocalBackend)
    with pytest.raises(BackendError, match="unknown backend"):
        make_backend("nomad", tmp_path)
    chosen, notice = choose("auto")
    up, why = docker_available()
    assert why in notice
    if not up:
        assert chosen == "local"
    assert notice.startswith(f"backend: {chosen} (auto: ")


def test_a_pytest_run_interrupted_by_sigint_leaves_no_service_behind(
    tmp_path: Path,
    demo_artifact_root: Path,
    subprocess_env: dict[str, str],
    pid_gone: Callable[[int], bool],
) -> None:
    pid_file = tmp_path / "pids.txt"
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(f"""
        import time
        from pathlib import Path
        from harness.backends.local import LocalBackend
        from harness.targets.reference import ClusterSpec, ReferenceCluster

        def test_runs_until_interrupted(tmp_path):
            backend = LocalBackend(tmp_path / "cluster")  # deliberately no teardown of its own
            ReferenceCluster(backend).start(
                ClusterSpec(workers=1, artifact_root=Path({str(demo_artifact_root)!r}),
                            preload=[("demo", "1", "demo/1/model.onnx")]))
            backend.pause("worker-1")
            pids = [s.ident for s in backend.services()]
            Path({str(pid_file)!r}).write_text(" ".join(pids))
            time.sleep(120)
        """)
    )
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:locust", "test_inner.py"],
        cwd=tmp_path,
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: pid_file.exists() or inner.poll() is not None, 60, "the inner cluster start")
        assert inner.poll() is None, inner.communicate()[0]
        pids = [int(p) for p in pid_file.read_text().split()]
        assert len(pids) == 2 and not any(pid_gone(p) for p in pids)
        os.kill(inner.pid, signal.SIGINT)  # what Ctrl-C does to the pytest process
        output, _ = inner.communicate(timeout=30)
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.wait()
    assert inner.returncode == 2, output  # pytest's "interrupted" exit status
    assert "KeyboardInterrupt" in output, output
    wait_for(lambda: all(pid_gone(p) for p in pids), 10, "every service process exiting")
