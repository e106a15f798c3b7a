"""The local backend against the real reference cluster (gateway + workers as subprocesses)."""

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
from harness.backends.base import BackendError
from harness.backends.local import LocalBackend
from harness.backends.select import choose, docker_available, make_backend
from harness.processes import live_processes

TOKEN = "test-admin-token"


def listed_workers(backend: LocalBackend) -> list[dict]:
    resp = httpx.get(
        f"{backend.gateway_url}/admin/workers", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return body["workers"] if isinstance(body, dict) else body


def listed_ids(backend: LocalBackend) -> set[str]:
    return {w["id"] for w in listed_workers(backend)}


def all_logs(backend: LocalBackend, tail: int = 3000) -> str:
    return "\n".join(f"--- {s.name}\n{backend.logs(s.name)[-tail:]}" for s in backend.services())


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, details: Callable[[], str] = str
) -> float:
    """Poll ``predicate``; return the seconds it took; fail saying ``what`` did not happen (+ details)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} did not happen within {timeout} s\n{details()}")
        time.sleep(0.05)
    return time.monotonic() - started


def test_start_registers_every_worker_holding_production(local_cluster: LocalBackend) -> None:
    names = [s.name for s in local_cluster.services()]
    assert names == ["gateway", "worker-1", "worker-2"]
    assert all(s.running for s in local_cluster.services())

    workers = listed_workers(local_cluster)
    assert sorted(w["name"] for w in workers) == ["worker-1", "worker-2"]
    for worker in workers:
        assert {"name": "demo", "version": "1"} in worker["models"]
    assert {local_cluster.worker_id("worker-1"), local_cluster.worker_id("worker-2")} == listed_ids(
        local_cluster
    )
    assert httpx.get(f"{local_cluster.gateway_url}/v2/health/ready", timeout=5).status_code == 200
    assert f"listening on {local_cluster.gateway_url}" in local_cluster.logs("gateway")
    gateway_pid = local_cluster.service("gateway").ident
    assert TOKEN.encode() not in Path(f"/proc/{gateway_pid}/cmdline").read_bytes()  # not visible in `ps`
    assert local_cluster.logs("worker-1").startswith("--- harness: starting worker-1")


def test_kill_gives_minus_nine_and_the_registry_expires_the_worker(local_cluster: LocalBackend) -> None:
    victim = local_cluster.worker_id("worker-1")
    assert local_cluster.kill("worker-1") == -9
    assert local_cluster.exit_code("worker-1") == -9
    assert not local_cluster.service("worker-1").running
    assert victim in listed_ids(local_cluster), "a killed worker cannot deregister: it stays until expiry"
    took = wait_for(lambda: victim not in listed_ids(local_cluster), 15, f"expiry of {victim}")
    assert took > 0.3, "removed before any heartbeat could be missed"
    assert local_cluster.worker_id("worker-2") in listed_ids(local_cluster)
    with pytest.raises(BackendError, match="not running"):
        local_cluster.kill("worker-1")


def test_graceful_stop_exits_zero_and_deregisters_at_once(local_cluster: LocalBackend) -> None:
    leaving = local_cluster.worker_id("worker-2")
    assert local_cluster.stop("worker-2", grace=5.0) == 0
    assert local_cluster.exit_code("worker-2") == 0
    assert leaving not in listed_ids(local_cluster)
    assert len(listed_ids(local_cluster)) == 1


def test_restart_is_a_fresh_process_on_the_same_port_with_a_new_id(local_cluster: LocalBackend) -> None:
    before = local_cluster.service("worker-1")
    old_id = local_cluster.worker_id("worker-1")
    local_cluster.kill("worker-1")
    local_cluster.restart("worker-1")
    after = local_cluster.service("worker-1")
    assert after.running and after.url == before.url and after.ident != before.ident
    new_id = local_cluster.worker_id("worker-1")
    assert new_id and new_id != old_id
    mine = [w for w in listed_workers(local_cluster) if w["id"] == new_id]
    assert mine and mine[0]["url"] == before.url
    assert {"name": "demo", "version": "1"} in mine[0]["models"]
    assert local_cluster.logs("worker-1").count("--- harness: starting worker-1") == 2


def test_restart_of_a_running_gateway_keeps_its_address(local_cluster: LocalBackend) -> None:
    url, pid = local_cluster.gateway_url, local_cluster.service("gateway").ident
    local_cluster.restart("gateway")
    assert local_cluster.gateway_url == url and local_cluster.service("gateway").ident != pid
    # the fresh gateway forgot its workers; their next heartbeat is answered 404 and they register again
    wait_for(
        lambda: {w["url"] for w in listed_workers(local_cluster)} == {w.url for w in local_cluster.workers()},
        15,
        "the workers registering again",
        lambda: all_logs(local_cluster),
    )


def test_pause_stops_the_process_and_resume_continues_it(
    local_cluster: LocalBackend, process_state: Callable[[int], str]
) -> None:
    pid = int(local_cluster.service("worker-1").ident)
    local_cluster.pause("worker-1")
    assert process_state(pid) == "T"
    assert local_cluster.paused("worker-1")
    url = local_cluster.service("worker-1").url
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{url}/v2/health/live", timeout=0.5)
    local_cluster.resume("worker-1")
    assert process_state(pid) in {"S", "R"}
    assert httpx.get(f"{url}/v2/health/live", timeout=5).status_code == 200
    assert local_cluster.exit_code("worker-1") is None


def test_add_workers_starts_them_concurrently_and_awaits_registration(local_cluster: LocalBackend) -> None:
    started = time.monotonic()
    assert local_cluster.add_workers(2) == ["worker-3", "worker-4"]
    took = time.monotonic() - started
    assert len(listed_ids(local_cluster)) == 4
    assert took < 20


def test_teardown_kills_every_process_even_paused_ones(
    local_cluster: LocalBackend, pid_gone: Callable[[int], bool]
) -> None:
    pids = [int(s.ident) for s in local_cluster.services()]
    local_cluster.pause("worker-2")
    local_cluster.teardown()
    assert all(pid_gone(pid) for pid in pids), [p for p in pids if not pid_gone(p)]
    assert not any(p.pid in pids for p in live_processes())
    assert not any(s.running for s in local_cluster.services())
    local_cluster.teardown()  # idempotent


def test_a_failing_preload_is_reported_with_the_gateway_answer(
    local_backend: LocalBackend, make_demo_spec: Callable[..., object]
) -> None:
    spec = make_demo_spec(workers=1)
    spec.preload = [("demo", "9", missing_artifact_uri("demo", "9"))]
    with pytest.raises(BackendError, match=r"registering demo v9 .* failed: 404"):
        local_backend.start(spec)


def test_a_service_that_dies_at_start_is_reported_with_its_log(
    local_backend: LocalBackend, make_demo_spec: Callable[..., object]
) -> None:
    spec = make_demo_spec(workers=1)
    spec.admin_token = ""  # the gateway refuses to start without one
    with pytest.raises(BackendError, match="gateway exited") as err:
        local_backend.start(spec)
    assert "last lines of its log" in str(err.value)


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
        from harness.backends.base import ClusterSpec
        from harness.backends.local import LocalBackend

        def test_runs_until_interrupted(tmp_path):
            backend = LocalBackend(tmp_path / "cluster")  # deliberately no teardown of its own
            backend.start(ClusterSpec(workers=1, artifact_root=Path({str(demo_artifact_root)!r}),
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
