"""The docker backend against a real Docker engine: real images, containers, networks, HTTP.

Skipped, with the reason, when no engine answers or no base image exists (offline:
``python tools/build_base_image.py``). The first run builds the images (about a minute per image
on 2 cores); later runs reuse them while ``sut/``, the Dockerfiles and the requirements are unchanged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness import docker_cleanup
from harness.backends.base import BackendError
from harness.docker_images import ImageBuildError, build_image, ensure_image, resolve_base_image
from harness.targets.reference import ClusterSpec, ReferenceCluster, TrainerSpec
from harness.targets.reference.services import IMAGES
from harness.waiting import until

ROOT = Path(__file__).resolve().parents[2]
INFER_BODY = {
    "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]
}


def _engine():
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    return client


@pytest.fixture(scope="module")
def docker_client():
    client = _engine()
    try:
        resolve_base_image(client)
    except ImageBuildError as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


def _labelled(client, label: str) -> tuple[int, int, int]:
    return (
        len(client.containers.list(all=True, filters={"label": label})),
        len(client.networks.list(filters={"label": label})),
        len(client.volumes.list(filters={"label": label})),
    )


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    until(check, timeout=timeout, what=what, interval=0.1)


def _listed_urls(cluster: ReferenceCluster) -> set[str]:
    assert cluster.spec is not None
    token = cluster.spec.admin_token
    resp = httpx.get(f"{cluster.gateway_url}/admin/workers", headers={"Authorization": f"Bearer {token}"})
    resp.raise_for_status()
    body = resp.json()
    return {w["url"].rstrip("/") for w in (body["workers"] if isinstance(body, dict) else body)}


# -- one cluster, a sequence of lifecycle actions ---------------------------------------------------


@pytest.fixture(scope="module")
def cluster(docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceCluster]:
    from fixtures.models import demo_versions
    from harness.backends.docker import DockerBackend

    root = tmp_path_factory.mktemp("docker-artifacts")
    demo_versions(root, ("1", "2"))
    backend = DockerBackend(tmp_path_factory.mktemp("docker-cluster"), startup_timeout=90.0)
    spec = ClusterSpec(
        workers=2,
        heartbeat_interval=0.5,
        artifact_root=root,
        preload=[("demo", "1", "demo/1/model.onnx"), ("demo", "2", "demo/2/model.onnx")],
    )
    reference = ReferenceCluster(backend)
    try:
        reference.start(spec)
        yield reference
    finally:
        reference.teardown()
        backend.teardown()


@pytest.mark.docker
def test_start_gateway_and_two_workers_and_infer_through_the_published_port(cluster) -> None:
    backend = cluster.backend
    names = {s.name: s for s in backend.services()}
    assert set(names) == {"gateway", "worker-1", "worker-2"}
    assert all(s.running for s in names.values())
    assert cluster.gateway_url.startswith("http://127.0.0.1:")
    resp = httpx.post(f"{cluster.gateway_url}/v2/models/demo/infer", json=INFER_BODY, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model_version"] == "1"
    assert _listed_urls(cluster) == {"http://worker-1:8001", "http://worker-2:8001"}
    # Published on 127.0.0.1 only.
    ports = backend.docker_container("gateway").attrs["NetworkSettings"]["Ports"]["8000/tcp"]
    assert {p["HostIp"] for p in ports} == {"127.0.0.1"}
    # how each service sees the others: by alias on the scenario network, paths as mounted
    placement = backend.placement("worker-1")
    assert placement.url_of("gateway") == "http://gateway:8000"
    assert placement.reached_by("gateway") == "http://worker-1:8001"
    assert placement.path(cluster.spec.artifact_root / "demo") == "/artifacts/demo"


@pytest.mark.docker
def test_kill_exits_137_and_the_registry_drops_the_worker(cluster) -> None:
    backend = cluster.backend
    assert backend.kill("worker-1") == 137
    assert backend.exit_code("worker-1") == 137
    assert not backend.service("worker-1").running
    _wait_for("the gateway to expire worker-1", lambda: "http://worker-1:8001" not in _listed_urls(cluster))
    resp = httpx.post(f"{cluster.gateway_url}/v2/models/demo/infer", json=INFER_BODY, timeout=10)
    assert resp.status_code == 200, resp.text  # worker-2 still serves


@pytest.mark.docker
def test_graceful_stop_exits_0_and_deregisters(cluster) -> None:
    backend = cluster.backend
    assert backend.stop("worker-2", grace=5) == 0
    assert "http://worker-2:8001" not in _listed_urls(cluster)  # deregistered, not expired
    assert backend.logs("worker-2")  # the stopped container's logs stay readable


@pytest.mark.docker
def test_restart_starts_a_new_container_under_the_same_name(cluster) -> None:
    backend = cluster.backend
    old = backend.service("worker-1")
    old_worker_id = cluster.worker_id("worker-1")
    cluster.restart("worker-1")
    new = backend.service("worker-1")
    assert new.running and new.ident != old.ident
    assert new.url == old.url  # same published port
    assert cluster.worker_id("worker-1") not in (None, old_worker_id)
    assert backend.exit_code("worker-1") is None
    ids = [c.id for c in backend._client.containers.list(all=True, filters={"name": "worker-1"})]
    assert old.ident not in ids  # the old one was removed
    resp = httpx.post(f"{cluster.gateway_url}/v2/models/demo/infer", json=INFER_BODY, timeout=10)
    assert resp.status_code == 200, resp.text


@pytest.mark.docker
def test_pause_freezes_and_resume_thaws(cluster) -> None:
    backend = cluster.backend
    url = backend.service("worker-1").url
    backend.pause("worker-1")
    assert backend.paused("worker-1") and backend.service("worker-1").running
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{url}/v2/health/live", timeout=1.0)
    backend.resume("worker-1")
    backend.resume("worker-1")  # a no-op when not paused
    assert not backend.paused("worker-1")
    assert httpx.get(f"{url}/v2/health/live", timeout=5.0).status_code == 200


@pytest.mark.docker
def test_a_memory_limit_makes_the_kernel_oom_kill_a_loading_worker(cluster) -> None:
    from sut.demo_models import build_large_model

    backend = cluster.backend
    big = build_large_model(cluster.spec.artifact_root, "big", "1", 160 * 2**20)
    usage = backend.docker_container("worker-1").stats(stream=False)["memory_stats"]["usage"]
    limit = usage + 48 * 2**20
    assert backend.limit_memory("worker-1", limit) == "docker"
    body = {"parameters": {"version": "1", "artifact_uri": big.artifact_uri}}
    with contextlib.suppress(httpx.HTTPError):  # the connection dies with the process
        httpx.post(f"{backend.service('worker-1').url}/v2/repository/models/big/load", json=body, timeout=60)
    _wait_for("worker-1 to exit", lambda: backend.exit_code("worker-1") is not None, 30)
    assert backend.exit_code("worker-1") == 137
    assert backend.oom_killed("worker-1")
    cluster.restart("worker-1")  # the limit applies to the new container too
    assert backend.docker_container("worker-1").attrs["HostConfig"]["Memory"] == limit
    assert not backend.oom_killed("worker-1")
    assert backend.limit_memory("worker-1", None) == "none"
    lifted = backend.docker_container("worker-1").attrs["HostConfig"]["Memory"]
    assert lifted == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # as good as none


@pytest.mark.docker
def test_without_fault_links_a_partition_is_refused_and_nothing_changes(cluster) -> None:
    # Link faults always go through proxy containers: a cluster started without them has no
    # fault-injectable link (partitions with proxies: test_fault_docker_links.py).
    backend = cluster.backend
    with pytest.raises(BackendError, match="no fault-injectable link between 'gateway' and 'worker-1'"):
        backend.partition("gateway", "worker-1")
    assert backend.service("worker-1").running
    assert "http://worker-1:8001" in _listed_urls(cluster)


@pytest.mark.docker
def test_the_gateway_catalog_is_a_host_file_that_survives_a_restart(cluster) -> None:
    backend = cluster.backend
    catalog = backend.data_file("gateway", "catalog.db")
    assert catalog.is_file() and catalog.stat().st_size > 0
    cluster.restart("gateway")
    token = cluster.spec.admin_token
    models = httpx.get(f"{cluster.gateway_url}/admin/models", headers={"Authorization": f"Bearer {token}"})
    body = models.json()
    listed = body["models"] if isinstance(body, dict) else body
    assert models.status_code == 200 and [m["name"] for m in listed] == ["demo"]
    with pytest.raises(BackendError, match="worker-1 keeps no data files"):
        backend.data_file("worker-1", "x")
    with pytest.raises(BackendError, match="outside"):
        backend.data_file("gateway", "../escape")


@pytest.mark.docker
def test_actions_on_unknown_or_stopped_services_say_why(cluster) -> None:
    backend = cluster.backend
    with pytest.raises(BackendError, match="no service named 'worker-9'"):
        backend.kill("worker-9")
    with pytest.raises(BackendError, match="worker-2: it is not running"):
        backend.pause("worker-2")


@pytest.mark.docker
def test_teardown_removes_containers_network_and_volume(cluster, docker_client) -> None:
    backend = cluster.backend
    label = f"{docker_cleanup.LABEL_SCENARIO}={backend.scenario_id}"
    assert _labelled(docker_client, label)[0] == 3  # gateway, worker-1 (new), worker-2 (stopped)
    backend.pause("worker-1")  # a paused container must go too
    backend.teardown()
    assert _labelled(docker_client, label) == (0, 0, 0)
    backend.teardown()  # idempotent, never raises
    assert (backend.workdir / "logs" / "gateway.log").read_text()


@pytest.mark.docker
def test_a_service_that_dies_at_start_fails_fast_with_its_log(docker_client, tmp_path: Path) -> None:
    from harness.backends.docker import DockerBackend

    backend = DockerBackend(tmp_path / "cluster", startup_timeout=90.0)
    # Port 1 on the gateway container's own loopback: refused at once, the gateway exits 1.
    spec = ClusterSpec(workers=1, artifact_root=tmp_path, db="postgresql://servingbdd@127.0.0.1:1/none")
    for kind in ("gateway", "worker"):  # so that the timing below is the services' alone
        ensure_image(IMAGES[kind], client=docker_client)
    began = time.monotonic()
    try:
        with pytest.raises(BackendError, match=r"gateway exited \(code 1\)[^\n]*\n.*catalog"):
            ReferenceCluster(backend).start(spec)
        assert time.monotonic() - began < 60  # not the 90 s startup timeout
    finally:
        backend.teardown()
    assert _labelled(docker_client, f"{docker_cleanup.LABEL_SCENARIO}={backend.scenario_id}") == (0, 0, 0)


@pytest.mark.docker
@pytest.mark.slow
def test_a_trainer_starts_when_the_spec_asks_for_one(
    docker_client, tmp_path: Path, demo_artifact_root: Path
) -> None:
    from harness.backends.docker import DockerBackend

    backend = DockerBackend(tmp_path / "cluster", startup_timeout=120.0)
    try:
        ReferenceCluster(backend).start(
            ClusterSpec(workers=0, artifact_root=demo_artifact_root, trainer=TrainerSpec())
        )
        trainer = backend.service("trainer")
        assert trainer.kind == "trainer" and trainer.running
        assert httpx.get(f"{trainer.url}/v2/health/live", timeout=10).status_code == 200
    finally:
        backend.teardown()
    assert _labelled(docker_client, f"{docker_cleanup.LABEL_SCENARIO}={backend.scenario_id}") == (0, 0, 0)


# -- cleanup of killed runs -------------------------------------------------------------------------

_KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fixtures.models import demo_versions
    from harness import docker_cleanup
    from harness.backends.docker import DockerBackend
    from harness.targets.reference import ClusterSpec, ReferenceCluster

    def test_starts_a_cluster_and_hangs(tmp_path):
        demo_versions(tmp_path / "artifacts", ("1",))
        backend = DockerBackend(tmp_path / "cluster", startup_timeout=90.0)
        ReferenceCluster(backend).start(ClusterSpec(workers=1, artifact_root=tmp_path / "artifacts",
                                                    preload=[("demo", "1", "demo/1/model.onnx")]))
        Path({marker!r}).write_text(docker_cleanup.RUN_ID)
        time.sleep(600)
    """
)


def _start_child_run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A pytest run in a subprocess (own session) that starts a cluster and hangs; returns its run label."""
    marker = tmp_path / "run-id"
    test_file = tmp_path / "test_killed_run.py"
    test_file.write_text(_KILLED_RUN.format(marker=str(marker)))
    argv = [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", "-p", "no:locust"]
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(
            "the child run to start its cluster", lambda: marker.exists() or proc.poll() is not None, 240
        )
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise
    if proc.poll() is not None:
        raise AssertionError(f"the child pytest exited early with {proc.returncode}")
    return proc, f"{docker_cleanup.LABEL_RUN}={marker.read_text()}"


@pytest.mark.docker
def test_a_sigkilled_run_leaves_nothing_after_the_next_run(
    docker_client, tmp_path: Path, subprocess_env: dict[str, str], demo_artifact_root: Path
) -> None:
    from harness.backends.docker import DockerBackend

    proc, run_label = _start_child_run(tmp_path, subprocess_env)
    try:
        assert _labelled(docker_client, run_label) == (2, 1, 0)  # gateway + worker, network
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no atexit, no finalizer, no signal handler runs
        proc.wait(timeout=30)
    assert _labelled(docker_client, run_label) == (2, 1, 0)  # the killed run left them behind

    nxt = DockerBackend(tmp_path / "next", startup_timeout=90.0)
    try:
        ReferenceCluster(nxt).start(ClusterSpec(workers=0, artifact_root=demo_artifact_root))
        assert _labelled(docker_client, run_label) == (0, 0, 0)
    finally:
        nxt.teardown()
    assert _labelled(docker_client, f"{docker_cleanup.LABEL_SCENARIO}={nxt.scenario_id}") == (0, 0, 0)


@pytest.mark.docker
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_terminated_run_cleans_up_after_itself(
    docker_client, tmp_path: Path, subprocess_env: dict[str, str], sig: signal.Signals
) -> None:
    proc, run_label = _start_child_run(tmp_path, subprocess_env)
    try:
        assert _labelled(docker_client, run_label)[0] == 2
        os.kill(proc.pid, sig)  # the pytest process only: its handler must tear down
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert _labelled(docker_client, run_label) == (0, 0, 0)


def test_owner_alive_tells_a_reused_pid_from_the_owner() -> None:
    me = docker_cleanup.run_labels()
    assert docker_cleanup.owner_alive(me)
    assert not docker_cleanup.owner_alive(
        {**me, docker_cleanup.LABEL_PID_START: "1"}
    )  # same pid, other process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not docker_cleanup.owner_alive({docker_cleanup.LABEL_PID: str(child.pid)})
    # Another machine's pid cannot be checked here: never reaped.
    assert docker_cleanup.owner_alive(
        {docker_cleanup.LABEL_PID: str(child.pid), docker_cleanup.LABEL_HOST: "elsewhere"}
    )


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.docker
def test_images_are_reused_while_their_inputs_are_unchanged(docker_client) -> None:
    first = ensure_image(IMAGES["worker"], client=docker_client)
    again = ensure_image(IMAGES["worker"], client=docker_client)
    assert again.tag == first.tag and not again.built
    assert again.seconds < 5


@pytest.mark.docker
def test_a_failed_build_names_the_step_and_the_file(docker_client, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n"
        "RUN python3 -c 'import no_such_module_here'\nRUN echo never\n"
    )
    with pytest.raises(ImageBuildError) as failure:
        build_image(tmp_path, tag="servingbdd/broken:test", base_image=resolve_base_image(docker_client))
    message = str(failure.value)
    assert "\n" not in message and "Traceback" not in message.split("output:")[0]
    assert f"at step 4/5 ({dockerfile}:4: RUN python3 -c 'import no_such_module_here')" in message
    assert "No module named 'no_such_module_here'" in message


@pytest.mark.docker
def test_a_missing_file_in_the_context_is_named(docker_client, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY wheels /tmp/wheels\n")
    with pytest.raises(
        ImageBuildError, match=r"at step 3/3 \(.*Dockerfile:3: COPY wheels /tmp/wheels\).*wheels"
    ):
        build_image(tmp_path, tag="servingbdd/broken:test", base_image=resolve_base_image(docker_client))


# -- the offline base image tool ------------------------------------------------------------------


def _base_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(ROOT / "tools" / "build_base_image.py"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_base_image_tool_without_an_engine_says_so_in_one_line(tmp_path: Path) -> None:
    result = _base_tool(env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode == 1
    assert result.stderr.startswith("build_base_image: error: no Docker engine answers")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.docker
def test_base_image_tool_skips_an_existing_image(docker_client) -> None:
    from harness.docker_images import OFFLINE_BASE_IMAGE

    try:
        docker_client.images.get(OFFLINE_BASE_IMAGE)
    except Exception:
        pytest.skip(f"{OFFLINE_BASE_IMAGE} is not built here")
    began = time.monotonic()
    result = _base_tool()
    assert result.returncode == 0, result.stderr
    assert "exists" in result.stdout and "nothing to do" in result.stdout
    assert time.monotonic() - began < 30


@pytest.mark.docker
def test_base_image_tool_reports_a_failed_debootstrap_in_one_line(docker_client) -> None:
    import shutil

    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("needs root and debootstrap")
    # A mirror on a closed local port: debootstrap fails at once (no traffic leaves 127.0.0.1).
    result = _base_tool("--name", "servingbdd/base:never-built", "--mirror", "http://127.0.0.1:9/debian")
    assert result.returncode == 1
    assert result.stderr.startswith("build_base_image: error: debootstrap failed (exit 1): ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
