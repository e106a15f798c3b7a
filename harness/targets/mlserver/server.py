"""Start MLServer for real on a model repository: as a local process or as a container.

Both give a :class:`MLServerHandle` with the URLs the test process uses (127.0.0.1 only), the logs, and
``stop()``. The local process runs ``mlserver start ROOT`` from the cached venv (:mod:`.env`), in its own
process group, registered with :mod:`harness.processes` so that it never outlives a run. The container
runs the offline image (:mod:`.image`) with ROOT bind-mounted read-only at ``/models``, its HTTP and
metrics ports published on 127.0.0.1 only, and the harness's run labels (:mod:`harness.docker_cleanup`),
so that the label sweeps remove it after a killed run.

These are building blocks for the MLServer target; the backends will own scenario-wide concerns.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import httpx

from harness import docker_cleanup, docker_images, waiting
from harness.processes import ManagedProcess, free_port, spawn
from harness.targets.mlserver import env, image
from harness.targets.mlserver.repository import ServerSettings, write_server_settings

HOST = "127.0.0.1"
POLL_S = 0.05
LABEL_SERVICE = "servingbdd.service"


class MLServerStartError(RuntimeError):
    """MLServer did not come up; the message carries the last lines of its log."""


class MLServerHandle(ABC):
    """A running MLServer: ``url`` (V2 REST), ``metrics_url`` (Prometheus), the repository ``root``."""

    url: str
    metrics_url: str
    root: Path

    @abstractmethod
    def logs(self) -> str: ...

    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop and remove it; idempotent, never raises."""

    def wait_live(self, timeout: float) -> None:
        """Until ``GET /v2/health/live`` answers 200; fail at once, with the log, if the server died."""
        with httpx.Client(timeout=2.0, trust_env=False) as client:

            def live() -> bool:
                if not self.alive():
                    raise MLServerStartError(
                        f"mlserver exited while starting; last log lines:\n{self._tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    return client.get(f"{self.url}/v2/health/live").status_code == 200
                return False

            try:
                waiting.until(live, timeout=timeout, what="/v2/health/live to answer 200", interval=POLL_S)
            except waiting.WaitTimeout:
                raise MLServerStartError(
                    f"mlserver did not answer /v2/health/live within {timeout:g} s; "
                    f"last log lines:\n{self._tail()}"
                ) from None

    def wait_model_ready(self, model: str, version: str | None = None, timeout: float = 30.0) -> None:
        """Until ``GET /v2/models/M[/versions/V]/ready`` answers 200."""
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/ready"
        with httpx.Client(timeout=2.0, trust_env=False) as client:

            def ready() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + path).status_code == 200:
                        return True
                if not self.alive():
                    raise MLServerStartError(
                        f"{path} never answered 200: mlserver exited; last log lines:\n{self._tail()}"
                    )
                return False

            try:
                waiting.until(ready, timeout=timeout, what=f"{path} to answer 200", interval=POLL_S)
            except waiting.WaitTimeout:
                raise MLServerStartError(
                    f"{path} never answered 200 within {timeout:g} s; last log lines:\n{self._tail()}"
                ) from None

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logs().splitlines()[-lines:])
        except Exception as exc:
            return f"(no log: {exc})"

    def __enter__(self) -> MLServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalMLServer(MLServerHandle):
    """``mlserver start ROOT`` as a child process on 127.0.0.1 (ports chosen free)."""

    def __init__(self, root: Path, workdir: Path, proc: ManagedProcess, settings: ServerSettings) -> None:
        self.root = root
        self.workdir = workdir
        self.proc = proc
        self.settings = settings
        self.url = f"http://{HOST}:{settings.http_port}"
        self.metrics_url = f"http://{HOST}:{settings.metrics_port}/metrics"

    def logs(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.alive()

    def stop(self, grace: float = 10.0) -> None:
        with contextlib.suppress(Exception):
            self.proc.terminate(grace)


def start_local(
    root: Path,
    workdir: Path,
    *,
    parallel_workers: int | None = None,
    startup_timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> LocalMLServer:
    """Write ``root/settings.json`` for free local ports, start MLServer on ``root``, wait until live."""
    executable = env.mlserver_executable(echo=echo)
    workdir = Path(workdir).resolve()
    extra = {} if parallel_workers is None else {"parallel_workers": parallel_workers}
    settings = ServerSettings(
        http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
        host=HOST, state_dir=str(workdir / "mlserver-state"), **extra,
    )  # fmt: skip
    write_server_settings(Path(root), settings)
    child_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    child_env["PYTHONUNBUFFERED"] = "1"
    proc = spawn(
        "mlserver",
        [str(executable), "start", str(Path(root).resolve())],
        log_path=workdir / "logs" / "mlserver.log",
        env=child_env,
        cwd=workdir,
    )
    server = LocalMLServer(Path(root), workdir, proc, settings)
    try:
        server.wait_live(startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server


class ContainerMLServer(MLServerHandle):
    """The MLServer image with ROOT at /models (read-only), ports published on 127.0.0.1 only."""

    def __init__(self, root: Path, container, client) -> None:
        self.root = root
        self.container = container  # docker SDK container
        self._client = client
        self._unregister = docker_cleanup.register(self.stop)
        self.url = f"http://{HOST}:{self._host_port(image.HTTP_PORT)}"
        self.metrics_url = f"http://{HOST}:{self._host_port(image.METRICS_PORT)}/metrics"

    def _host_port(self, port: int) -> int:
        self.container.reload()
        bindings = self.container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"]
        return int(next(b["HostPort"] for b in bindings if b["HostIp"] == HOST))

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def alive(self) -> bool:
        try:
            self.container.reload()
        except Exception:
            return False
        return self.container.status in ("created", "running", "paused", "restarting")

    def stop(self) -> None:
        self._unregister()
        with contextlib.suppress(Exception):
            self.container.remove(force=True, v=True)


def start_container(
    root: Path,
    *,
    parallel_workers: int | None = None,
    startup_timeout: float = 90.0,
    echo: Callable[[str], None] = print,
) -> ContainerMLServer:
    """Write ``root/settings.json`` for the container's ports, run the image on ``root``, wait until live."""
    import docker

    client = docker.from_env(timeout=60)
    docker_cleanup.reap_leftovers(client)
    tag = docker_images.ensure_image(image.recipe(), client=client).tag
    extra = {} if parallel_workers is None else {"parallel_workers": parallel_workers}
    settings = ServerSettings(
        http_port=image.HTTP_PORT, grpc_port=image.GRPC_PORT, metrics_port=image.METRICS_PORT,
        host="0.0.0.0", state_dir="/tmp/mlserver-state", **extra,
    )  # fmt: skip
    write_server_settings(Path(root), settings)
    container = client.containers.run(
        tag,
        name=f"servingbdd-mlserver-{uuid.uuid4().hex[:10]}",
        detach=True,
        labels={
            **docker_cleanup.run_labels(),
            docker_cleanup.LABEL_SCENARIO: "mlserver",
            LABEL_SERVICE: "mlserver",
        },
        volumes={str(Path(root).resolve()): {"bind": image.MODELS_DIR, "mode": "ro"}},
        ports={f"{image.HTTP_PORT}/tcp": (HOST, None), f"{image.METRICS_PORT}/tcp": (HOST, None)},
        environment={"PYTHONUNBUFFERED": "1"},
    )
    try:
        server = ContainerMLServer(Path(root), container, client)
    except Exception:
        with contextlib.suppress(Exception):
            container.remove(force=True)
        raise
    try:
        server.wait_live(startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server
