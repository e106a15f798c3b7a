"""The backend interface: where services run, knowing nothing of which services they are.

A backend runs :class:`ServiceSpec` s — a name, a command, the ports it listens on, its health path, its
environment, the host directories it needs — as local processes or as Docker containers, reachable from
the test process on 127.0.0.1, and acts on them: stop, kill, restart, pause, limit memory, cut or slow
the links between two of them. Targets (:mod:`harness.targets`) decide *what* to run and in which order;
steps reach both only through the :class:`harness.world.World`.

A service's command is built for the backend it runs on, from a :class:`Placement`: the host and ports
it binds, how it reaches the other services (through a fault proxy when its links accept faults), how
the paths it is given look from inside it, which Python runs it.

:class:`Backend` is the skeleton both backends share (start order, data directories, awaiting health,
start timings, link faults); a subclass only launches, stops and inspects.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.waiting import ServiceExited, WaitTimeout, Watch, http_ok, log_tail, until

if TYPE_CHECKING:
    from harness.docker_images import ImageRecipe
    from harness.load.workers import WorkerSite

log = logging.getLogger(__name__)

DATA_DIR = "/data"  # a service's data directory inside its container


class BackendError(RuntimeError):
    """A backend could not do what was asked; the message says what and why."""


@dataclass(frozen=True)
class Mount:
    """A host directory a service needs, and where it sees it inside a container."""

    host: Path
    inside: str
    mode: str = "ro"  # "ro" | "rw"


class Placement(abc.ABC):
    """How one service sees the world on the backend that runs it."""

    bind_host: str  # the address it listens on
    python: str  # the interpreter for ``python -m ...`` commands

    @abc.abstractmethod
    def port(self, name: str = "http") -> int:
        """The port it listens on for ``name``."""

    @abc.abstractmethod
    def path(self, host_path: Path) -> str:
        """How a host path given in a :class:`Mount` (or its data dir) looks to the service."""

    @property
    @abc.abstractmethod
    def data_dir(self) -> str:
        """Its persistent data directory (kept across restarts), as it sees it."""

    @abc.abstractmethod
    def url_of(self, other: str, port: str = "http") -> str:
        """The URL at which this service reaches ``other`` (through a fault proxy on a faultable link)."""

    @abc.abstractmethod
    def reached_by(self, other: str, port: str = "http") -> str:
        """This service's own URL as ``other`` reaches it (through a fault proxy on a faultable link)."""


@dataclass
class ServiceSpec:
    """One service to run. ``command`` is called with the :class:`Placement` the backend gives it."""

    name: str  # "gateway", "worker-1", "mlserver": unique in a deployment
    kind: str  # "gateway" | "worker" | "trainer" | ...: its role (workers are listed by kind)
    command: Callable[[Placement], list[str]]
    image: ImageRecipe | None = None  # how the docker backend builds its image (None: local only)
    ports: dict[str, int] = field(default_factory=lambda: {"http": 8000})  # name -> port in a container
    health_path: str | None = "/v2/health/live"  # awaited on port "http" after each launch
    env: dict[str, str] = field(default_factory=dict)  # secrets go here, never into the command line
    mounts: list[Mount] = field(default_factory=list)
    data_dir: bool = False  # a persistent data directory, mounted at /data in a container
    #: services whose links with this one accept faults: an in-path proxy each way (partition, latency)
    links: tuple[str, ...] = ()
    startup_timeout: float | None = None  # None: the backend's default


@dataclass
class ServiceInfo:
    name: str  # "gateway", "worker-1", ...
    kind: str
    url: str  # port "http", reachable from the test process, e.g. http://127.0.0.1:41234
    running: bool
    ident: str  # pid on local, container id on docker


class LinkFaults(Protocol):
    """What cuts and slows the links services declare (``ServiceSpec.links``): a backend's fault proxies."""

    def partition(self, a: str, b: str) -> None: ...

    def heal(self, a: str, b: str) -> None: ...

    def heal_all(self) -> None: ...

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float) -> None: ...


class Backend(abc.ABC):
    """Runs services and acts on them. One instance per scenario; :meth:`teardown` removes everything."""

    name: str = "abstract"
    health_interval: float = 0.05  # seconds between two probes of a starting service's health path

    def __init__(self, workdir: Path, *, startup_timeout: float) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self.specs: dict[str, ServiceSpec] = {}
        self.timings: dict[str, float] = {}  # seconds to start each service (benchmarks, reports)
        self._lock = threading.Lock()

    # -- running services ------------------------------------------------------------------------
    def launch(self, spec: ServiceSpec) -> ServiceInfo:
        """Start ``spec`` and wait until its health path answers; a service that exits fails at once."""
        with self._lock:
            if spec.name in self.specs:
                raise BackendError(f"a service named {spec.name!r} already runs in this scenario")
            self.specs[spec.name] = spec
        self._start(spec)
        return self.service(spec.name)

    def launch_all(self, specs: Iterable[ServiceSpec]) -> list[ServiceInfo]:
        """Start several services at once (they boot concurrently); the first failure is raised."""
        specs = list(specs)
        if len(specs) <= 1:
            return [self.launch(s) for s in specs]
        with ThreadPoolExecutor(max_workers=len(specs), thread_name_prefix=f"{self.name}-start") as pool:
            return list(pool.map(self.launch, specs))

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """A fresh process / container under the same name, ports and data; awaited like a launch.
        ``env`` changes its environment from then on (e.g. a clock offset read at start)."""
        spec = self.spec(name)
        if env:
            spec.env.update(env)
        self._remove(name)
        self._start(spec)

    def spec(self, name: str) -> ServiceSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise BackendError(f"no service named {name!r}; known: {sorted(self.specs)}") from None

    def service(self, name: str) -> ServiceInfo:
        for info in self.services():
            if info.name == name:
                return info
        raise BackendError(f"no service named {name!r}; known: {sorted(self.specs)}")

    def services(self) -> list[ServiceInfo]:
        return [self._info(spec) for spec in list(self.specs.values())]

    def url(self, name: str, port: str = "http") -> str:
        """Where the test process reaches service ``name`` on ``port`` (always 127.0.0.1)."""
        return f"http://127.0.0.1:{self._host_port(name, port)}"

    def data_file(self, name: str, relative: str) -> Path:
        """The host path of ``relative`` inside service ``name``'s data directory, where the test process
        can damage it in place."""
        if not self.spec(name).data_dir:
            raise BackendError(f"{name} keeps no data files (it has no data directory)")
        root = self.data_dir(name)
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise BackendError(f"{relative!r} is outside the data directory of {name} ({root})")
        return path

    def data_dir(self, name: str) -> Path:
        return (self.workdir / f"{name}-data").resolve()

    def placement(self, name: str) -> Placement:
        """How service ``name`` sees the world (its ports, its URLs for the others)."""
        return self._placement(self.spec(name))

    # -- the start every backend shares ----------------------------------------------------------
    def _start(self, spec: ServiceSpec) -> None:
        """Launch and await ``spec``, the same way on every backend, so that :attr:`timings` compare."""
        started = time.monotonic()
        if spec.data_dir:  # before the launch: the service may write there at once
            self.data_dir(spec.name).mkdir(parents=True, exist_ok=True)
        what = self._launch(spec)
        if spec.health_path is not None:
            self._await_health(spec)
        self.timings[spec.name] = time.monotonic() - started
        log.info("%s live at %s (%s)", spec.name, self.url(spec.name), what)

    def _await_health(self, spec: ServiceSpec) -> None:
        """Until the health path answers 2xx; a service that exits fails at once, with its log tail."""
        url = self.url(spec.name) + spec.health_path  # type: ignore[operator]
        timeout = spec.startup_timeout or self.startup_timeout
        try:
            until(
                lambda: http_ok(url),
                timeout=timeout,
                what=f"{spec.name} to answer {url}",
                interval=self.health_interval,
                watch=Watch(self, (spec.name,)),
            )
        except ServiceExited as exc:
            raise BackendError(str(exc)) from None
        except WaitTimeout as exc:
            detail = self._health_detail(spec.name, timeout)
            raise BackendError(
                f"{exc}{detail}; last lines of its log:\n{log_tail(self.logs(spec.name))}"
            ) from None

    def _not_running(self, name: str, action: str) -> BackendError:
        return BackendError(f"cannot {action} {name}: it is not running (exit code {self.exit_code(name)})")

    # -- subclasses: launch, stop, inspect ---------------------------------------------------------
    @abc.abstractmethod
    def _launch(self, spec: ServiceSpec) -> str:
        """Start one process / container for ``spec`` (same ports as before on a restart), without
        awaiting it; returns what runs it, for the log ("pid 4242", "container 0123abcd")."""

    def _health_detail(self, name: str, waited_s: float) -> str:
        """What the backend can tell about a service that never answered, as " (...)"; none by default."""
        return ""

    @abc.abstractmethod
    def _placement(self, spec: ServiceSpec) -> Placement: ...

    @abc.abstractmethod
    def _remove(self, name: str) -> None:
        """Kill and forget the service's current process / container (its logs are kept)."""

    @abc.abstractmethod
    def _info(self, spec: ServiceSpec) -> ServiceInfo: ...

    @abc.abstractmethod
    def _host_port(self, name: str, port: str) -> int: ...

    @abc.abstractmethod
    def stop(self, name: str, *, grace: float = 10.0) -> int | None:
        """Graceful stop (SIGTERM, then SIGKILL after ``grace``); the exit code."""

    @abc.abstractmethod
    def kill(self, name: str) -> int | None:
        """SIGKILL; the exit code (-9 on local, 137 on docker)."""

    @abc.abstractmethod
    def pause(self, name: str) -> None:
        """Freeze the service (SIGSTOP / docker pause); its ports stay open."""

    @abc.abstractmethod
    def resume(self, name: str) -> None:
        """Thaw a paused service; a no-op when it is not paused (resuming is an undo action)."""

    @abc.abstractmethod
    def paused(self, name: str) -> bool: ...

    @abc.abstractmethod
    def logs(self, name: str) -> str: ...

    @abc.abstractmethod
    def exit_code(self, name: str) -> int | None:
        """None while running."""

    @abc.abstractmethod
    def command_lines(self, name: str) -> list[str]:
        """The command lines of the service's processes, as ``ps`` shows them to any user of the machine
        (local: /proc/<pid>/cmdline of its process group; docker: ``docker top``)."""

    @abc.abstractmethod
    def memory_usage(self, name: str) -> int | None:
        """Resident memory of the service measured from outside it (bytes; None when not running):
        /proc of its process group on local, the container's cgroup on docker."""

    @abc.abstractmethod
    def teardown(self) -> None:
        """Stop and remove everything this backend started. Idempotent; never raises."""

    # -- memory limits (the kernel's OOM killer, for real) ------------------------------------------
    def limit_memory(self, name: str, limit_bytes: int | None) -> str:
        """Hard memory limit on a service (None lifts it); it also applies after a ``restart``.
        Returns the mechanism: "cgroup-v1", "cgroup-v2", "rlimit" (local) or "docker" (mem_limit)."""
        raise BackendError(f"the {self.name} backend cannot limit memory")

    def oom_killed(self, name: str) -> bool:
        """The kernel killed the service's current process for exceeding its memory limit."""
        return False

    # -- network faults between two services; undone by heal / heal_all ----------------------------
    @property
    def links(self) -> LinkFaults | None:
        """The fault proxies on the links services declare (made on first use); None: no link faults."""
        return None

    def _made_links(self) -> LinkFaults | None:
        """:attr:`links` if already made: healing must not make them (Docker containers, a network)."""
        return self.links

    def partition(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` both ways; neither service is told."""
        self._link_faults("partition services").partition(a, b)

    def heal(self, a: str, b: str) -> None:
        """Undo every fault (partition, latency) on the link between ``a`` and ``b``."""
        self._link_faults("heal links").heal(a, b)

    def heal_all(self) -> None:
        """Undo every network fault this backend applied."""
        links = self._made_links()
        if links is not None:
            links.heal_all()

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        """Make each exchange on the connections ``a`` opens to ``b`` ``latency_s`` slower (0 removes it)."""
        self._link_faults("add latency").set_latency(a, b, latency_s, jitter_s)

    def _link_faults(self, action: str) -> LinkFaults:
        links = self.links
        if links is None:
            raise BackendError(f"the {self.name} backend cannot {action}")
        return links

    # -- infrastructure a target may ask for -------------------------------------------------------
    def load_site(self, service: str) -> WorkerSite:
        """Where Locust workers sending load to ``service`` run: processes on this machine."""
        from harness.load.workers import ProcessSite

        return ProcessSite()

    def database_server(self) -> Any:
        """A PostgreSQL server the services can reach (not started yet: ``start()`` it)."""
        raise BackendError(f"the {self.name} backend cannot run a database server")
