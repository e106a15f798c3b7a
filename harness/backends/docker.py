"""The ``docker`` backend: services in containers (testcontainers), one Docker network per scenario.

Images come from each service's :class:`~harness.docker_images.ImageRecipe` (built offline, reused
while their inputs are unchanged). Services find each other on the scenario's labelled network by alias
(their service name) on the ports their spec declares; those ports are published on 127.0.0.1 only, on a
random host port that a restarted service keeps (so clients in the test process stay valid). A service
with a data directory gets ``<workdir>/<name>-data`` bind-mounted at /data (kept across restarts, reachable
by file faults). Memory limits are ``docker update`` and apply to later containers of the service too.
Links a service declares go through fault-proxy containers (:mod:`harness.faults.docker_links`).

Ryuk is disabled (its image cannot be pulled); :mod:`harness.docker_cleanup` labels everything, tears
down at exit and on signals, and reaps what killed runs left behind.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import docker_cleanup
from harness.backends.base import (
    DATA_DIR,
    Backend,
    BackendError,
    Placement,
    ServiceInfo,
    ServiceSpec,
)
from harness.docker_images import ensure_image, resolve_base_image
from harness.faults import docker_memory
from harness.faults.docker_links import DockerLinks
from harness.load.workers import ContainerSite, WorkerSite
from harness.waiting import log_tail

HOST = "127.0.0.1"
# Generous: on a shared 2-core machine at load 30 a container took over a minute to answer. A service
# that dies fails the wait at once anyway, so only a hung one waits this long.
STARTUP_TIMEOUT_S = 120.0
LABEL_SERVICE = "servingbdd.service"
_RUNNING_STATES = ("created", "running", "paused", "restarting")


@dataclass
class _Container:
    image: str = ""
    host_ports: dict[str, int] = field(default_factory=dict)  # published on 127.0.0.1; kept by restarts
    container: Any = None  # testcontainers DockerContainer
    past_logs: list[str] = field(default_factory=list)  # of containers replaced by a restart
    last_exit_code: int | None = None
    mem_limit: int | None = None  # bytes; applied to every container of the service


class DockerPlacement(Placement):
    bind_host = "0.0.0.0"  # inside the container; published on 127.0.0.1 only
    python = "python"

    def __init__(self, backend: DockerBackend, spec: ServiceSpec) -> None:
        self._backend = backend
        self._spec = spec

    def port(self, name: str = "http") -> int:
        return self._spec.ports[name]

    def path(self, host_path: Path) -> str:
        host_path = Path(host_path).resolve()
        if self._spec.data_dir and host_path.is_relative_to(self._backend.data_dir(self._spec.name)):
            return str(Path(DATA_DIR) / host_path.relative_to(self._backend.data_dir(self._spec.name)))
        for mount in self._spec.mounts:
            root = Path(mount.host).resolve()
            if host_path.is_relative_to(root):
                return str(Path(mount.inside) / host_path.relative_to(root))
        raise BackendError(f"{host_path} is not mounted into {self._spec.name}")

    @property
    def data_dir(self) -> str:
        return DATA_DIR

    def url_of(self, other: str, port: str = "http") -> str:
        if other in self._spec.links:
            return self._backend.links.forward_url(self._spec.name, other)
        return f"http://{other}:{self._backend.spec(other).ports[port]}"

    def reached_by(self, other: str, port: str = "http") -> str:
        if other in self._spec.links:
            return self._backend.links.backward_url(self._spec.name, other)
        return f"http://{self._spec.name}:{self.port(port)}"


class DockerBackend(Backend):
    name = "docker"

    def __init__(
        self, workdir: Path, *, startup_timeout: float = STARTUP_TIMEOUT_S, base_image: str | None = None
    ) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.base_image = base_image
        self.scenario_id = uuid.uuid4().hex[:10]
        self._client: Any = None
        self._network: Any = None
        self._labels: dict[str, str] = {}
        self._containers: dict[str, _Container] = {}
        self._links: DockerLinks | None = None
        self._links_lock = threading.Lock()
        self._database: Any = None
        self._unregister: Any = None
        self._torn_down = False

    # -- launching -------------------------------------------------------------------------------
    def _launch(self, spec: ServiceSpec) -> str:
        self._prepare()
        record = self._containers.setdefault(spec.name, _Container())
        if spec.image is None:
            raise BackendError(f"{spec.name} has no image recipe: it cannot run on the docker backend")
        if not record.image:
            record.image = ensure_image(spec.image, client=self._client, base_image=self.base_image).tag
        for peer in spec.links:  # before the command: it names the proxies
            self.links.ensure(spec.name, peer, spec.ports["http"], self.spec(peer).ports["http"])
        command = spec.command(self._placement(spec))
        container = _service_container_class()(
            record.image,
            command=command,
            name=f"servingbdd-{self.scenario_id}-{spec.name}",
            env={"PYTHONUNBUFFERED": "1", **spec.env},
            network=self._network,
            network_aliases=[spec.name],
            labels={**self._labels, LABEL_SERVICE: spec.name},
            **docker_memory.start_options(record.mem_limit),
        )
        for port_name, port in spec.ports.items():  # 127.0.0.1 only; the same host port after a restart
            container.ports[f"{port}/tcp"] = (HOST, record.host_ports.get(port_name))
        for mount in spec.mounts:
            container.with_volume_mapping(str(Path(mount.host).resolve()), mount.inside, mount.mode)
        if spec.data_dir:
            container.with_volume_mapping(str(self.data_dir(spec.name)), DATA_DIR, "rw")
        record.container = container
        try:
            container.start()
        except Exception as exc:  # docker API errors, or the container died at once: no traceback
            code = self._exited(spec.name)
            if code is not None:
                raise BackendError(
                    f"{spec.name} exited (code {code}) right after starting; "
                    f"last lines of its log:\n{log_tail(self.logs(spec.name))}"
                ) from None
            raise BackendError(f"starting {spec.name} ({record.image}) failed: {exc}") from None
        for port_name, port in spec.ports.items():
            record.host_ports[port_name] = int(container.get_exposed_port(port))
        return f"container {container.get_container_id()[:12]}"

    def _placement(self, spec: ServiceSpec) -> Placement:
        return DockerPlacement(self, spec)

    def _remove(self, name: str) -> None:
        record = self._record(name)
        container = self._wrapped(name)
        if container is None:
            return
        with contextlib.suppress(Exception):
            container.reload()
            if container.status == "paused":
                container.unpause()
        with contextlib.suppress(Exception):
            record.past_logs.append(self._container_logs(name))
            state = container.attrs.get("State", {})
            if state.get("Status") not in _RUNNING_STATES:
                record.last_exit_code = state.get("ExitCode")
        container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            record.container.get_docker_client().client.close()  # each testcontainers object has a client
        record.container = None

    @property
    def links(self) -> DockerLinks:
        """The scenario's fault-proxy containers; made once (linked workers launch concurrently)."""
        with self._links_lock:
            if self._links is None:
                self._prepare()
                self._links = DockerLinks(
                    self._client,
                    network=self.network_name,
                    image=self.base_image or resolve_base_image(self._client),
                    labels=self._labels,
                )
            return self._links

    def _made_links(self) -> DockerLinks | None:
        return self._links

    # -- lifecycle actions -----------------------------------------------------------------------
    def stop(self, name: str, *, grace: float = 10.0) -> int | None:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace`` seconds (rounded up, plus one)."""
        container = self._running(name, "stop")
        if container.status == "paused":  # a frozen process cannot handle SIGTERM
            container.unpause()
        container.stop(timeout=math.ceil(grace) + 1)
        return self._exit_code_after(name, container)

    def kill(self, name: str) -> int | None:
        """``docker kill`` (SIGKILL): the exit code is 137."""
        container = self._running(name, "kill")
        if container.status == "paused":
            container.unpause()
        container.kill()
        return self._exit_code_after(name, container)

    def pause(self, name: str) -> None:
        """``docker pause`` (cgroup freezer): the process is frozen, its ports stay open."""
        self._running(name, "pause").pause()

    def resume(self, name: str) -> None:
        container = self._current(name)
        if container is not None and container.status == "paused":
            container.unpause()

    def paused(self, name: str) -> bool:
        container = self._current(name)
        return container is not None and container.status == "paused"

    # -- inspection ----------------------------------------------------------------------------
    def _info(self, spec: ServiceSpec) -> ServiceInfo:
        container = self._current(spec.name) if spec.name in self._containers else None
        running = container is not None and container.status in ("running", "paused")
        record = self._containers.get(spec.name)
        port = record.host_ports.get("http") if record is not None else None
        url = f"http://{HOST}:{port}" if port else ""
        return ServiceInfo(spec.name, spec.kind, url, running, container.id if container is not None else "")

    def _host_port(self, name: str, port: str) -> int:
        ports = self._record(name).host_ports
        if port not in ports:
            raise BackendError(f"{name} publishes no port named {port!r} (ports: {sorted(ports)})")
        return ports[port]

    def logs(self, name: str) -> str:
        return "".join([*self._record(name).past_logs, self._container_logs(name)])

    def exit_code(self, name: str) -> int | None:
        record = self._record(name)
        container = self._current(name)
        if container is None:
            return record.last_exit_code
        if container.status in _RUNNING_STATES:
            return None
        return container.attrs["State"]["ExitCode"]

    def memory_usage(self, name: str) -> int | None:
        """The container's resident memory: anonymous memory plus mapped files (like a process's RSS, and
        unlike the cgroup's usage, not moved by the page cache of files read, whose pages go from inactive
        to active when read again); else the usage without the inactive page cache."""
        container = self._current(name)
        if container is None or container.status != "running":
            return None
        stats = container.stats(stream=False).get("memory_stats") or {}
        detail = stats.get("stats") or {}
        anon = detail.get("total_rss", detail.get("anon"))  # cgroup v1 / v2
        mapped = detail.get("total_mapped_file", detail.get("file_mapped"))
        if anon is not None and mapped is not None:
            return int(anon) + int(mapped)
        usage = int(stats.get("usage", 0))
        cache = int(detail.get("total_inactive_file", detail.get("inactive_file", detail.get("cache", 0))))
        return max(usage - cache, 0)

    def command_lines(self, name: str) -> list[str]:
        """``docker top``: the command line of every process in the container, as ``ps`` shows it."""
        container = self._running(name, "read the command lines of")
        top = container.top()
        column = top["Titles"].index("CMD") if "CMD" in top["Titles"] else -1
        return [str(row[column]) for row in top.get("Processes") or []]

    def docker_container(self, name: str) -> Any:
        """The docker SDK container of a service (for faults: ``update(mem_limit=...)``, exec, ...)."""
        container = self._current(name)
        if container is None:
            raise BackendError(f"{name} has no container (torn down?)")
        return container

    def load_site(self, service: str) -> WorkerSite:
        """Load workers as containers on the scenario network, sending to ``service`` by its alias."""
        self._prepare()
        url = f"http://{service}:{self.spec(service).ports['http']}"
        return ContainerSite(self._client, self.network_name, url, self._labels)

    @property
    def network_name(self) -> str:
        if self._network is None:
            raise BackendError("no service started yet: the scenario has no network")
        return self._network.name

    # -- memory and network faults -------------------------------------------------------------
    def limit_memory(self, name: str, limit_bytes: int | None) -> str:
        """The container's memory limit (``docker update``; swap limited to the same value), kept for the
        service's later containers; None lifts it. Returns the mechanism: "docker" ("none" when lifted)."""
        record = self._record(name)
        record.mem_limit = limit_bytes
        container = self._current(name)
        if container is not None and container.status in ("running", "paused"):
            docker_memory.limit_container(container, limit_bytes)
        return docker_memory.MECHANISM if limit_bytes is not None else "none"

    def oom_killed(self, name: str) -> bool:
        """Exit code 137 together with ``State.OOMKilled`` (sticky on its own) of the current container."""
        container = self._current(name)
        return container is not None and docker_memory.container_oom_killed(container)

    def database_server(self) -> Any:
        """A PostgreSQL container on the scenario network under the alias ``postgres`` (not started:
        ``start()`` it); its ``dsn`` is for the services, ``host_dsn`` for the test process."""
        from harness.postgres_container import ALIAS, PostgresContainer

        self._prepare()
        if self._database is None:
            self._database = PostgresContainer(
                self._client,
                network=self.network_name,
                labels={**self._labels, LABEL_SERVICE: ALIAS},
                name=f"servingbdd-{self.scenario_id}-{ALIAS}",
                log_dir=self.workdir / "logs",
            )
        return self._database

    # -- teardown ------------------------------------------------------------------------------
    def teardown(self) -> None:
        """Remove the containers (logs saved under ``<workdir>/logs``) and the network. Idempotent."""
        if self._torn_down:
            return
        self._torn_down = True
        for name in reversed(list(self._containers)):
            with contextlib.suppress(Exception):
                self._save_logs(name)
            with contextlib.suppress(Exception):
                self._remove(name)
        if self._database is not None:
            self._database.close()  # never raises
        if self._links is not None:
            self._links.close(self.workdir / "logs")  # never raises
        if self._network is not None:
            with contextlib.suppress(Exception):
                self._network.remove()
        if self._client is not None and self._labels:  # whatever escaped the bookkeeping above
            docker_cleanup.remove_labelled(
                self._client, f"{docker_cleanup.LABEL_SCENARIO}={self.scenario_id}"
            )
        if self._unregister is not None:
            self._unregister()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()

    # -- internals -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        """The engine client, the leftover sweep, teardown at exit, the labels and the network; once."""
        if self._network is not None:
            return
        if self._torn_down:
            raise BackendError("the backend was torn down")
        self._client = _docker_client()
        docker_cleanup.reap_leftovers(self._client)
        self._unregister = docker_cleanup.register(self.teardown)
        self._labels = {**docker_cleanup.run_labels(), docker_cleanup.LABEL_SCENARIO: self.scenario_id}
        docker_cleanup.import_testcontainers()
        from testcontainers.core.network import Network

        network = Network(docker_network_kw={"labels": self._labels, "driver": "bridge"})
        network.name = f"servingbdd-{self.scenario_id}"
        self._network = network.create()

    def _record(self, name: str) -> _Container:
        try:
            return self._containers[name]
        except KeyError:
            raise BackendError(f"no service named {name!r}; known: {sorted(self._containers)}") from None

    def _wrapped(self, name: str) -> Any:
        record = self._record(name)
        if record.container is None:
            return None
        try:
            return record.container.get_wrapped_container()
        except Exception:
            return None

    def _current(self, name: str) -> Any:
        """The service's docker container, freshly inspected; None if it has none (or it is gone)."""
        container = self._wrapped(name)
        if container is None:
            return None
        try:
            container.reload()
        except Exception:
            return None
        return container

    def _exited(self, name: str) -> int | None:
        container = self._current(name)
        if container is None or container.status in _RUNNING_STATES:
            return None
        return container.attrs["State"]["ExitCode"]

    def _running(self, name: str, action: str) -> Any:
        container = self._current(name)
        if container is None or container.status not in ("running", "paused"):
            raise self._not_running(name, action)
        return container

    def _exit_code_after(self, name: str, container: Any) -> int | None:
        result = container.wait(timeout=30)
        container.reload()
        code = container.attrs["State"]["ExitCode"]
        self._record(name).last_exit_code = code
        return code if code is not None else result.get("StatusCode")

    def _container_logs(self, name: str) -> str:
        container = self._wrapped(name)
        if container is None:
            return ""
        try:
            return container.logs(stdout=True, stderr=True).decode(errors="replace")
        except Exception:
            return ""

    def _save_logs(self, name: str) -> None:
        text = self.logs(name)
        if text:
            path = self.workdir / "logs" / f"{name}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


@functools.cache
def _service_container_class() -> type:
    docker_cleanup.import_testcontainers()
    from testcontainers.core.container import DockerContainer

    class ServiceContainer(DockerContainer):
        """A container whose published ports are reached on 127.0.0.1 (never 'localhost' → ::1)."""

        def get_container_host_ip(self) -> str:
            return HOST

    return ServiceContainer


def _docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        raise BackendError(f"no Docker engine answers: {exc}") from None
    return client
