"""The ``docker`` backend: the reference cluster in containers, one Docker network per scenario.

Images come from :mod:`harness.docker_images` (built offline, reused while their inputs are
unchanged). Each scenario gets its own labelled network, where the services find each other by
alias (``gateway``, ``worker-1``, ..., ``trainer``); the gateway's data directory is a host directory
bind-mounted at /data (a restarted gateway keeps its catalog; file faults reach it: ``data_file``).
Container ports are published on 127.0.0.1 only, on a random host port that a restarted service
keeps. Memory limits (``limit_memory``) are ``docker update`` and apply to later containers too.
Artifacts are bind-mounted read-only at ``/artifacts``.

Readiness goes through testcontainers wait strategies on the real endpoints: ``/v2/health/live`` of
each service, then the gateway's ``/admin/workers`` listing every new worker holding the
``production`` versions. A service that exits while awaited fails the wait at once, with its log.

Ryuk is disabled (its image cannot be pulled); :mod:`harness.docker_cleanup` labels everything,
tears down at exit and on signals, and reaps what killed runs left behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import docker_cleanup
from harness.backends.base import BackendError, ClusterBackend, ClusterSpec, ServiceInfo
from harness.backends.gateway_admin import GatewayAdmin, claim_registrations
from harness.backends.secrets import CONTAINER_DIR as SECRETS_DIR
from harness.backends.secrets import JOIN_TOKEN, SecretFiles
from harness.docker_images import ensure_image, resolve_base_image
from harness.faults import docker_memory
from harness.faults.docker_links import DockerLinkFaults
from sut.launcher import gateway_command, trainer_command, worker_command

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
GATEWAY_PORT = 8000  # inside the containers: every container has its own network namespace
WORKER_PORT = 8001
TRAINER_PORT = 8002
ARTIFACTS = Path("/artifacts")
DATA_DIR = Path("/data")
POLL_INTERVAL = 0.05
# Generous: on a shared 2-core machine at load 30 a container took over a minute to answer. A service
# that dies fails the wait at once anyway, so only a hung one waits this long.
STARTUP_TIMEOUT_S = 120.0
LABEL_SERVICE = "servingbdd.service"
_RUNNING_STATES = ("created", "running", "paused", "restarting")


@dataclass
class _Service:
    name: str
    kind: str  # "gateway" | "worker" | "trainer" | "stranger"
    image: str
    command: list[str]
    port: int  # inside the container
    host_port: int | None = None  # published on 127.0.0.1; kept across restarts
    container: Any = None  # testcontainers DockerContainer
    past_logs: list[str] = field(default_factory=list)  # of containers replaced by a restart
    last_exit_code: int | None = None
    worker_id: str | None = None
    mem_limit: int | None = None  # bytes; applied to every container of the service (survives restarts)
    advertised: str = ""  # how the gateway reaches it, when not by its own alias (a fault-proxy container)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.host_port}"

    @property
    def advertise_url(self) -> str:
        return self.advertised or f"http://{self.name}:{self.port}"


class DockerBackend(DockerLinkFaults, ClusterBackend):
    """Partitions and latency come from :class:`DockerLinkFaults` (fault-proxy containers with
    ``ClusterSpec.fault_links``, else ``docker network disconnect``)."""

    name = "docker"

    def __init__(
        self, workdir: Path, *, startup_timeout: float = STARTUP_TIMEOUT_S, base_image: str | None = None
    ) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self.base_image = base_image
        self.spec: ClusterSpec | None = None
        self.scenario_id = uuid.uuid4().hex[:10]
        self.timings: dict[str, float] = {}  # seconds: images, gateway, workers, total (for benchmarks)
        self._client: Any = None
        self._network: Any = None
        self._labels: dict[str, str] = {}
        self._images: dict[str, str] = {}
        self._services: dict[str, _Service] = {}
        self._admin: GatewayAdmin | None = None
        self._next_worker = 1
        self._unregister: Any = None
        self._torn_down = False
        self._database: Any = None  # a PostgresContainer on the scenario network (database_server)
        self.secrets = SecretFiles(self.workdir / "secrets")  # bind-mounted read-only at /run/secrets
        self._strangers = 0

    # -- start ---------------------------------------------------------------------------------
    def start(self, spec: ClusterSpec) -> None:
        if self.spec is not None:
            raise BackendError("this backend already started a cluster; use one backend per scenario")
        if spec.artifact_root is None:
            raise BackendError("ClusterSpec.artifact_root is required (build artifacts with fixtures.models)")
        began = time.monotonic()
        self.spec = spec
        self._prepare()
        for kind in ("gateway", "worker"):
            self._images[kind] = ensure_image(kind, client=self._client, base_image=self.base_image).tag
        if spec.fault_links:  # a fault-proxy container on each worker link (harness.faults.docker_links)
            self._open_link_proxies(
                self._client,
                image=self.base_image or resolve_base_image(self._client),
                labels=self._labels,
                gateway_port=GATEWAY_PORT,
                worker_port=WORKER_PORT,
            )
        self.timings["images"] = time.monotonic() - began
        self._data_dir("gateway").mkdir(parents=True, exist_ok=True)
        self.secrets.write(JOIN_TOKEN, spec.join_token)

        mark = time.monotonic()
        command = gateway_command(  # tokens: SUT_ADMIN_TOKEN in its environment, the join token in a file
            port=GATEWAY_PORT,
            data_dir=DATA_DIR,
            artifact_root=ARTIFACTS,
            join_token_file=SecretFiles.in_container(JOIN_TOKEN),
            join_token_overlap=spec.join_token_overlap,
            host="0.0.0.0",  # inside the container; published on 127.0.0.1 only
            db=None if spec.db == "sqlite" else spec.db,
            heartbeat_interval=spec.heartbeat_interval,
            upstream_timeout=spec.upstream_timeout,
            python="python",
        )
        gateway = _Service("gateway", "gateway", self._images["gateway"], command, GATEWAY_PORT)
        self._services["gateway"] = gateway
        self._launch(gateway)
        self._admin = GatewayAdmin(gateway.url, spec.admin_token)
        for model, version, uri in spec.preload:
            self._admin.register_version(model, version, uri)
        self.timings["gateway"] = time.monotonic() - mark
        mark = time.monotonic()
        if spec.workers:
            self.add_workers(spec.workers)
        self.timings["workers"] = time.monotonic() - mark
        if spec.trainer is not None:
            self._start_trainer(spec)
        self.timings["total"] = time.monotonic() - began

    def _start_trainer(self, spec: ClusterSpec) -> None:
        """The drift monitor / retrainer, after the workers (its image is built only when asked for)."""
        trainer = spec.trainer
        assert trainer is not None
        image = ensure_image("trainer", client=self._client, base_image=self.base_image).tag
        self._data_dir("trainer").mkdir(parents=True, exist_ok=True)
        command = trainer_command(
            port=TRAINER_PORT,
            gateway_url=f"http://gateway:{GATEWAY_PORT}",
            artifact_root=ARTIFACTS,  # SUT_ADMIN_TOKEN in its environment
            host="0.0.0.0",
            data_dir=DATA_DIR,
            interval=trainer.interval,
            window=trainer.window,
            min_window=trainer.min_window,
            psi=trainer.psi,
            ks_p=trainer.ks_p,
            holdout=trainer.holdout,
            python="python",
        )
        service = _Service("trainer", "trainer", image, command, TRAINER_PORT)
        self._services["trainer"] = service
        self._launch(service)

    @property
    def gateway_url(self) -> str:
        return self._service("gateway").url

    @property
    def network_name(self) -> str:
        """The scenario's Docker network (for faults such as partitions: ``docker network disconnect``)."""
        if self._network is None:
            raise BackendError("the cluster is not started (call start() first)")
        return self._network.name

    def database_server(self) -> Any:
        """A PostgreSQL container on the scenario network under the alias ``postgres`` (not started:
        ``start()`` it), for a catalog database the gateway container can reach: its ``dsn`` goes into
        ``ClusterSpec.db``, the harness uses ``host_dsn`` (127.0.0.1). May come before :meth:`start`;
        removed at teardown. See :mod:`harness.postgres_container`."""
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

    def add_workers(self, count: int, *, wait: bool = True, pool: str | None = None) -> list[str]:
        spec = self._started_spec()
        services = []
        for _ in range(count):
            name = f"worker-{self._next_worker}"
            self._next_worker += 1
            advertise_url, gateway_url = self._worker_link_urls(  # through a fault proxy with fault_links
                name, f"http://{name}:{WORKER_PORT}", f"http://gateway:{GATEWAY_PORT}"
            )
            command = worker_command(
                port=WORKER_PORT,
                gateway_url=gateway_url,
                artifact_root=ARTIFACTS,
                name=name,
                host="0.0.0.0",
                advertise_url=advertise_url,
                memory_budget=spec.memory_budget,
                join_token_file=SecretFiles.in_container(JOIN_TOKEN),
                pool=pool,
                python="python",
            )
            service = _Service(name, "worker", self._images["worker"], command, WORKER_PORT)
            service.advertised = advertise_url
            self._services[name] = service
            services.append(service)
        self._await_link_proxies()
        if services:
            with ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="docker-start") as pool:
                list(pool.map(self._launch, services))  # re-raises the first failure
        if wait:
            self._wait_registered(services, stale_ids={})
        return [s.name for s in services]

    def start_stranger(self, join_token: str | None) -> str:
        """A worker container on the scenario network presenting ``join_token`` (None: none) straight to
        the gateway; awaited live, not registered."""
        spec = self._started_spec()
        self._strangers += 1
        name = f"stranger-{self._strangers}"
        token_file = None
        if join_token:
            self.secrets.write(f"{name}.join_token", join_token)
            token_file = SecretFiles.in_container(f"{name}.join_token")
        command = worker_command(
            port=WORKER_PORT,
            gateway_url=f"http://gateway:{GATEWAY_PORT}",
            artifact_root=ARTIFACTS,
            name=name,
            host="0.0.0.0",
            advertise_url=f"http://{name}:{WORKER_PORT}",
            memory_budget=spec.memory_budget,
            join_token_file=token_file,
            python="python",
        )
        service = _Service(name, "stranger", self._images["worker"], command, WORKER_PORT)
        self._services[name] = service
        self._launch(service)
        return name

    def rotate_join_token(self, token: str) -> None:
        self._started_spec()
        self.secrets.write(JOIN_TOKEN, token)

    def command_lines(self, name: str) -> list[str]:
        """``docker top``: the command line of every process in the container, as ``ps`` shows it."""
        container = self._running_container(name, "read the command lines of")
        top = container.top()
        column = top["Titles"].index("CMD") if "CMD" in top["Titles"] else -1
        return [str(row[column]) for row in top.get("Processes") or []]

    # -- lifecycle actions -----------------------------------------------------------------------
    def stop(self, name: str, *, grace: float = 10.0) -> int | None:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace`` seconds (rounded up, plus one)."""
        container = self._running_container(name, "stop")
        if container.status == "paused":  # a frozen process cannot handle SIGTERM
            container.unpause()
        container.stop(timeout=math.ceil(grace) + 1)
        return self._exit_code_after(name, container)

    def kill(self, name: str) -> int | None:
        """``docker kill`` (SIGKILL): the exit code is 137."""
        container = self._running_container(name, "kill")
        if container.status == "paused":
            container.unpause()
        container.kill()
        return self._exit_code_after(name, container)

    def restart(self, name: str) -> None:
        """A NEW container under the same name, alias and host port (the old one is removed);
        waits until it is live (gateway) or registered again under a new id (worker)."""
        self._started_spec()
        service = self._service(name)
        stale: dict[str, set[str]] = {}
        if service.kind == "worker":  # the old registration may linger until it expires
            stale[name] = self._gateway_admin().registered_ids(service.advertise_url) | (
                {service.worker_id} if service.worker_id else set()
            )
        self._remove_container(service)
        self._launch(service)
        if service.kind == "worker":
            self._wait_registered([service], stale_ids=stale)

    def pause(self, name: str) -> None:
        """``docker pause`` (cgroup freezer): the process is frozen, its ports stay open."""
        self._running_container(name, "pause").pause()

    def resume(self, name: str) -> None:
        """``docker unpause``; a no-op unless paused (resuming is an undo action)."""
        container = self._current(name)
        if container is not None and container.status == "paused":
            container.unpause()

    # -- inspection ----------------------------------------------------------------------------
    def services(self) -> list[ServiceInfo]:
        infos = []
        for service in self._services.values():
            container = self._current(service.name)
            running = container is not None and container.status in ("running", "paused")
            ident = container.id if container is not None else ""
            infos.append(ServiceInfo(service.name, service.kind, service.url, running, ident))
        return infos

    def logs(self, name: str) -> str:
        service = self._service(name)
        return "".join([*service.past_logs, self._container_logs(service)])

    def exit_code(self, name: str) -> int | None:
        service = self._service(name)
        container = self._current(name)
        if container is None:
            return service.last_exit_code
        if container.status in _RUNNING_STATES:
            return None
        return container.attrs["State"]["ExitCode"]

    def _exited(self, name: str) -> int | None:
        """The exit code of the service's current container if it has exited; None otherwise."""
        container = self._current(name)
        if container is None or container.status in _RUNNING_STATES:
            return None
        return container.attrs["State"]["ExitCode"]

    def data_file(self, name: str, relative: str) -> Path:
        """The host path of ``relative`` in the gateway's data directory (bind-mounted at /data)."""
        if self._service(name).kind != "gateway":
            raise BackendError(f"{name} keeps no data files; only the gateway does (its catalog database)")
        root = self._data_dir(name)
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise BackendError(f"{relative!r} is outside the gateway's data directory {root}")
        return path

    def paused(self, name: str) -> bool:
        container = self._current(name)
        return container is not None and container.status == "paused"

    def worker_id(self, name: str) -> str | None:
        """The id the gateway gave this worker when the backend last saw it register."""
        return self._service(name).worker_id

    def docker_container(self, name: str) -> Any:
        """The docker SDK container of a service (for faults: ``update(mem_limit=...)``, exec, ...)."""
        container = self._current(name)
        if container is None:
            raise BackendError(f"{name} has no container (torn down?)")
        return container

    def limit_memory(self, name: str, limit_bytes: int | None) -> str:
        """The container's memory limit (``docker update``; swap limited to the same value), kept for the
        service's later containers; None lifts it. Over it the kernel OOM-kills the service: exit code
        137 and ``oom_killed(name)``. Returns the mechanism: "docker" ("none" when lifted)."""
        service = self._service(name)
        service.mem_limit = limit_bytes
        container = self._current(name)
        if container is not None and container.status in ("running", "paused"):
            docker_memory.limit_container(container, limit_bytes)
        return docker_memory.MECHANISM if limit_bytes is not None else "none"

    def oom_killed(self, name: str) -> bool:
        """Exit code 137 together with ``State.OOMKilled`` (sticky on its own) of the current container."""
        container = self._current(name)
        return container is not None and docker_memory.container_oom_killed(container)

    # -- teardown ------------------------------------------------------------------------------
    def teardown(self) -> None:
        """Remove the containers (logs saved under ``<workdir>/logs``) and the network.
        Idempotent; never raises."""
        if self._torn_down:
            return
        self._torn_down = True
        for service in reversed(list(self._services.values())):
            with contextlib.suppress(Exception):
                self._save_logs(service)
            with contextlib.suppress(Exception):
                self._remove_container(service)
        if self._database is not None:
            self._database.close()  # never raises
        self._close_link_proxies(self.workdir / "logs")  # never raises
        if self._network is not None:
            with contextlib.suppress(Exception):
                self._network.remove()
        if self._client is not None and self._labels:
            # Whatever escaped the bookkeeping above (e.g. a start interrupted half-way).
            docker_cleanup.remove_labelled(
                self._client, f"{docker_cleanup.LABEL_SCENARIO}={self.scenario_id}"
            )
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
        if self._unregister is not None:
            self._unregister()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()

    # -- internals: containers ---------------------------------------------------------------------
    def _prepare(self) -> None:
        """The engine client, the leftover sweep, teardown at exit, the labels and the scenario network;
        once (``database_server`` does it when the database starts before the cluster)."""
        if self._network is not None:
            return
        if self._torn_down:
            raise BackendError("the cluster was torn down")
        self._client = _docker_client()
        docker_cleanup.reap_leftovers(self._client)
        self._unregister = docker_cleanup.register(self.teardown)
        self._labels = {**docker_cleanup.run_labels(), docker_cleanup.LABEL_SCENARIO: self.scenario_id}
        self._create_network()

    def _create_network(self) -> None:
        docker_cleanup.import_testcontainers()
        from testcontainers.core.network import Network

        network = Network(docker_network_kw={"labels": self._labels, "driver": "bridge"})
        network.name = f"servingbdd-{self.scenario_id}"
        self._network = network.create()

    def _data_dir(self, name: str) -> Path:
        """Host directory bind-mounted at /data (gateway, trainer): kept across restarts, and reachable
        from the test process for file faults."""
        return (self.workdir / f"{name}-data").resolve()

    def _launch(self, service: _Service) -> None:
        """Create and start a container for ``service`` and wait until ``/v2/health/live`` answers."""
        spec = self._started_spec()
        limits = docker_memory.start_options(service.mem_limit)
        container = _service_container_class()(
            service.image,
            command=service.command,
            name=f"servingbdd-{self.scenario_id}-{service.name}",
            env={"PYTHONUNBUFFERED": "1", **self._token_env(service), **spec.env},
            network=self._network,
            network_aliases=[service.name],
            labels={**self._labels, LABEL_SERVICE: service.name},
            **limits,
        )
        container.ports[f"{service.port}/tcp"] = (HOST, service.host_port)  # 127.0.0.1 only
        # Read-only, except for the trainer: it exports retrained artifacts there.
        artifacts_mode = "rw" if service.kind == "trainer" else "ro"
        container.with_volume_mapping(str(Path(spec.artifact_root).resolve()), str(ARTIFACTS), artifacts_mode)
        if service.kind in ("gateway", "trainer"):
            container.with_volume_mapping(str(self._data_dir(service.name)), str(DATA_DIR), "rw")
        if service.kind in ("gateway", "worker", "stranger"):  # token files; rewritten in place to rotate
            container.with_volume_mapping(str(self.secrets.root), str(SECRETS_DIR), "ro")
        container.waiting_for(self._strategy(service.port, "/v2/health/live", watched=[service]))
        service.container = container
        try:
            container.start()
        except BackendError:
            raise
        except TimeoutError:
            raise BackendError(
                f"{service.name} did not answer /v2/health/live within {self.startup_timeout:.0f}s; "
                f"last lines of its log:\n{self._log_tail(service)}"
            ) from None
        except Exception as exc:  # docker API errors, or the container died at once: no traceback
            code = self._exited(service.name)
            if code is not None:
                raise BackendError(
                    f"{service.name} exited (code {code}) right after starting; "
                    f"last lines of its log:\n{self._log_tail(service)}"
                ) from None
            raise BackendError(f"starting {service.name} ({service.image}) failed: {exc}") from None
        service.host_port = int(container.get_exposed_port(service.port))
        log.info("%s live at %s (container %s)", service.name, service.url, container.get_container_id()[:12])

    def _token_env(self, service: _Service) -> dict[str, str]:
        """Only the services that use the admin API get the admin token (workers never do)."""
        spec = self._started_spec()
        return {"SUT_ADMIN_TOKEN": spec.admin_token} if service.kind in ("gateway", "trainer") else {}

    def _strategy(self, port: int, path: str, *, watched: list[_Service]) -> Any:
        strategy = _watching_strategy_class()(port, path, watched=[s.name for s in watched], backend=self)
        return strategy.with_startup_timeout(self.startup_timeout).with_poll_interval(POLL_INTERVAL)

    def _remove_container(self, service: _Service) -> None:
        container = self._wrapped(service)
        if container is None:
            return
        with contextlib.suppress(Exception):
            container.reload()
            if container.status == "paused":
                container.unpause()
        with contextlib.suppress(Exception):
            service.past_logs.append(self._container_logs(service))
            state = container.attrs.get("State", {})
            if state.get("Status") not in _RUNNING_STATES:
                service.last_exit_code = state.get("ExitCode")
        container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            service.container.get_docker_client().client.close()  # each testcontainers object has a client
        service.container = None

    def _wrapped(self, service: _Service) -> Any:
        if service.container is None:
            return None
        try:
            return service.container.get_wrapped_container()
        except Exception:
            return None

    def _current(self, name: str) -> Any:
        """The service's docker container, freshly inspected; None if it has none (or it is gone)."""
        container = self._wrapped(self._service(name))
        if container is None:
            return None
        try:
            container.reload()
        except Exception:
            return None
        return container

    def _running_container(self, name: str, action: str) -> Any:
        container = self._current(name)
        if container is None or container.status not in ("running", "paused"):
            raise BackendError(
                f"cannot {action} {name}: it is not running (exit code {self.exit_code(name)})"
            )
        return container

    def _exit_code_after(self, name: str, container: Any) -> int | None:
        result = container.wait(timeout=30)
        container.reload()
        code = container.attrs["State"]["ExitCode"]
        self._service(name).last_exit_code = code
        return code if code is not None else result.get("StatusCode")

    def _container_logs(self, service: _Service) -> str:
        container = self._wrapped(service)
        if container is None:
            return ""
        try:
            return container.logs(stdout=True, stderr=True).decode(errors="replace")
        except Exception:
            return ""

    def _log_tail(self, service: _Service, lines: int = 25) -> str:
        return "\n".join(self.logs(service.name).splitlines()[-lines:])

    def _save_logs(self, service: _Service) -> None:
        text = self.logs(service.name)
        if text:
            path = self.workdir / "logs" / f"{service.name}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    # -- internals: the gateway's view -------------------------------------------------------------
    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise BackendError(f"no service named {name!r}; known: {sorted(self._services)}") from None

    def _started_spec(self) -> ClusterSpec:
        if self.spec is None or self._network is None:
            raise BackendError("the cluster is not started (call start() first)")
        if self._torn_down:
            raise BackendError("the cluster was torn down")
        return self.spec

    def _gateway_admin(self) -> GatewayAdmin:
        if self._admin is None:
            raise BackendError("the cluster is not started")
        return self._admin

    def _wait_registered(self, services: list[_Service], *, stale_ids: dict[str, set[str]]) -> None:
        """Until ``GET /admin/workers`` lists each worker (under a fresh id) holding production."""
        wanted = self._gateway_admin().production_versions() or set()
        pending = {s.advertise_url: s for s in services}

        def all_listed(body: str) -> bool:
            try:
                listed = json.loads(body)
            except ValueError:
                return False
            claim_registrations(
                listed if isinstance(listed, list) else [], pending, stale_ids=stale_ids, wanted=wanted
            )
            return not pending

        spec = self._started_spec()
        strategy = (
            self._strategy(GATEWAY_PORT, "/admin/workers", watched=[self._service("gateway"), *services])
            .with_header("Authorization", f"Bearer {spec.admin_token}")
            .for_response_predicate(all_listed)
        )
        try:
            strategy.wait_until_ready(self._service("gateway").container)
        except TimeoutError:
            versions = ", ".join(f"{m} v{v}" for m, v in sorted(wanted)) or "no versions"
            tails = "\n".join(f"--- {s.name}:\n{self._log_tail(s)}" for s in services)
            raise BackendError(
                f"timed out after {self.startup_timeout:.0f}s waiting for "
                f"{', '.join(sorted(s.name for s in pending.values()))} to register "
                f"holding {versions}\n{tails}"
            ) from None


# -- testcontainers classes, defined on first use (Ryuk must be disabled before the import) -------------


@functools.cache
def _service_container_class() -> type:
    docker_cleanup.import_testcontainers()
    from testcontainers.core.container import DockerContainer

    class ServiceContainer(DockerContainer):
        """A container whose published ports are reached on 127.0.0.1 (never 'localhost' → ::1)."""

        def get_container_host_ip(self) -> str:
            return HOST

    return ServiceContainer


@functools.cache
def _watching_strategy_class() -> type:
    docker_cleanup.import_testcontainers()
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    class WatchingHttpWaitStrategy(HttpWaitStrategy):
        """HttpWaitStrategy that gives up at once, with the log, when a watched service has exited."""

        def __init__(self, port: int, path: str, *, watched: list[str], backend: DockerBackend) -> None:
            super().__init__(port, path)
            self._watched = watched
            self._backend = backend

        def _try_http_request(self, url: str, headers: dict[str, str], ssl_context: Any) -> bool:
            for name in self._watched:
                code = self._backend._exited(name)
                if code is not None:
                    service = self._backend._service(name)
                    raise BackendError(
                        f"{name} exited (code {code}) while waiting for {url}; "
                        f"last lines of its log:\n{self._backend._log_tail(service)}"
                    )
            return super()._try_http_request(url, headers, ssl_context)

    return WatchingHttpWaitStrategy


def _docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        raise BackendError(f"no Docker engine answers: {exc}") from None
    return client
