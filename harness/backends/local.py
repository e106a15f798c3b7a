"""The ``local`` backend: services as subprocesses on 127.0.0.1.

Each service runs in its own process group (see :mod:`harness.processes`) with stdout+stderr in
``<workdir>/logs/<name>.log``; a service with a data directory keeps it in ``<workdir>/<name>-data``.
Ports are picked free on the first launch and kept by restarts, so clients stay valid. Links a service
declares go through in-path fault proxies in the test process (:mod:`harness.faults.links`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, BackendError, Placement, ServiceInfo, ServiceSpec
from harness.faults.links import FaultLinks
from harness.faults.service_memory import ServiceMemoryLimits
from harness.processes import ManagedProcess, free_port, group_command_lines, group_rss, spawn
from harness.report.resources import proc_reading

HOST = "127.0.0.1"
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclass
class _Process:
    ports: dict[str, int]
    log_path: Path
    proc: ManagedProcess | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()


class LocalPlacement(Placement):
    bind_host = HOST

    def __init__(self, backend: LocalBackend, spec: ServiceSpec) -> None:
        self._backend = backend
        self._spec = spec
        self.python = backend.python

    def port(self, name: str = "http") -> int:
        return self._backend._record(self._spec.name).ports[name]

    def path(self, host_path: Path) -> str:
        return str(host_path)

    @property
    def data_dir(self) -> str:
        return str(self._backend.data_dir(self._spec.name))

    def url_of(self, other: str, port: str = "http") -> str:
        target_port = self._backend._host_port(other, port)
        if other in self._spec.links:
            return self._backend.links.proxy(self._spec.name, other, target_port)
        return f"http://{HOST}:{target_port}"

    def reached_by(self, other: str, port: str = "http") -> str:
        own = self.port(port)
        if other in self._spec.links:
            return self._backend.links.proxy(other, self._spec.name, own)
        return f"http://{HOST}:{own}"


# Generous: a service that is starting only needs its imports (~1.5 s idle), but on a 2-core machine
# running two suites at once a start has been seen to take tens of seconds. A dead service fails at once.
STARTUP_TIMEOUT_S = 60.0


class LocalBackend(Backend):
    name = "local"
    health_interval = 0.02  # a refused connection costs next to nothing

    def __init__(
        self, workdir: Path, *, startup_timeout: float = STARTUP_TIMEOUT_S, python: str = sys.executable
    ) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.python = python
        self._records: dict[str, _Process] = {}
        self._links = FaultLinks()
        self.memory_limits = ServiceMemoryLimits()  # by service name; re-applied on restart

    # -- launching -------------------------------------------------------------------------------
    def _launch(self, spec: ServiceSpec) -> str:
        record = self._records.get(spec.name)
        if record is None:  # first launch: pick ports, kept by every restart
            record = _Process(
                {p: free_port(HOST) for p in spec.ports}, self.workdir / "logs" / f"{spec.name}.log"
            )
            self._records[spec.name] = record
        argv = spec.command(self._placement(spec))
        record.log_path.parent.mkdir(parents=True, exist_ok=True)
        with record.log_path.open("a") as log:
            log.write(f"--- harness: starting {spec.name}: {' '.join(argv)}\n")
        record.proc = spawn(spec.name, argv, log_path=record.log_path, env=self._env(spec))
        self.memory_limits.reapply(spec.name, record.proc.pid)  # a limit survives a restart
        return f"pid {record.proc.pid}"

    def _health_detail(self, name: str, waited_s: float) -> str:
        """The CPU it used: a starved service (a loaded machine) is told from a stuck one (a bug)."""
        reading = proc_reading(self._record(name).proc.pid)  # type: ignore[union-attr]
        if not reading:
            return ""
        cpu = reading[0]
        # A Python service imports in ~1.5 s of CPU; far less over the whole wait means it hardly ran.
        if cpu < 1.0:
            why = f"starved of CPU or blocked, not busy, over {waited_s:.0f} s"
        else:
            why = "busy: slow, or stuck in a loop"
        return f" (it used {cpu:.1f} s of CPU: {why})"

    def _env(self, spec: ServiceSpec) -> dict[str, str]:
        # Proxy variables are dropped: the services talk only to each other on 127.0.0.1.
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
        env.update(spec.env)
        env["PYTHONUNBUFFERED"] = "1"  # logs complete even when the process is killed
        return env

    def _placement(self, spec: ServiceSpec) -> Placement:
        return LocalPlacement(self, spec)

    def _remove(self, name: str) -> None:
        record = self._record(name)
        if record.running:
            record.proc.kill()  # type: ignore[union-attr]

    @property
    def links(self) -> FaultLinks:
        """Fault proxies in the test process, one each way per declared link."""
        return self._links

    # -- lifecycle actions -----------------------------------------------------------------------
    def stop(self, name: str, *, grace: float = 10.0) -> int | None:
        """SIGTERM, wait ``grace`` seconds (plus a one-second margin for the exit itself), then SIGKILL."""
        return self._running(name, "stop").terminate(grace + 1.0)

    def kill(self, name: str) -> int | None:
        return self._running(name, "kill").kill()

    def pause(self, name: str) -> None:
        self._running(name, "pause").pause()

    def resume(self, name: str) -> None:
        record = self._record(name)
        if record.running:
            record.proc.resume()  # type: ignore[union-attr]

    def paused(self, name: str) -> bool:
        record = self._record(name)
        return record.running and record.proc.paused  # type: ignore[union-attr]

    # -- inspection ----------------------------------------------------------------------------
    def _info(self, spec: ServiceSpec) -> ServiceInfo:
        record = self._records.get(spec.name)
        running = record is not None and record.running
        ident = str(record.proc.pid) if record is not None and record.proc is not None else ""
        url = f"http://{HOST}:{record.ports.get('http', 0)}" if record is not None else ""
        return ServiceInfo(spec.name, spec.kind, url, running, ident)

    def _host_port(self, name: str, port: str) -> int:
        ports = self._record(name).ports
        if port not in ports:
            raise BackendError(f"{name} listens on no port named {port!r} (ports: {sorted(ports)})")
        return ports[port]

    def logs(self, name: str) -> str:
        path = self._record(name).log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def exit_code(self, name: str) -> int | None:
        proc = self._record(name).proc
        return None if proc is None else proc.returncode

    def pid(self, name: str) -> int | None:
        """The pid (= process-group id) of the service's current process."""
        proc = self._record(name).proc
        return None if proc is None else proc.pid

    def memory_usage(self, name: str) -> int | None:
        record = self._record(name)
        return group_rss(record.proc.pid) if record.running else None  # type: ignore[union-attr]

    def command_lines(self, name: str) -> list[str]:
        pgid = self._running(name, "read the command line of").pid
        return group_command_lines(pgid)

    def process_group_alive(self, name: str) -> bool:
        """Whether any process of the service's last process group still exists."""
        proc = self._record(name).proc
        if proc is None:
            return False
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    # -- memory and network faults -------------------------------------------------------------
    def limit_memory(self, name: str, limit_bytes: int | None) -> str:
        """A cgroup (v2/v1) when one is writable, else RLIMIT_AS; see :mod:`harness.faults.service_memory`."""
        if limit_bytes is None:
            self.memory_limits.remove(name)
            return "none"
        return self.memory_limits.apply(name, self._running(name, "limit the memory of").pid, limit_bytes)

    def oom_killed(self, name: str) -> bool:
        return self.memory_limits.oom_killed(name, self.exit_code(name))

    def database_server(self) -> Any:
        """A PostgreSQL server on the host's 127.0.0.1 (the services run there too)."""
        from harness.postgres import PostgresServer

        return PostgresServer()

    def teardown(self) -> None:
        """Kill every process group (paused ones are resumed first); idempotent, never raises."""
        for record in reversed(list(self._records.values())):
            try:
                if record.proc is not None and record.proc.alive():
                    record.proc.kill()
            except Exception:  # teardown goes on; the atexit registry is the last line of defence
                pass
        self._links.close()
        self.memory_limits.remove_all()

    # -- internals -------------------------------------------------------------------------------
    def _record(self, name: str) -> _Process:
        try:
            return self._records[name]
        except KeyError:
            raise BackendError(f"no service named {name!r}; known: {sorted(self._records)}") from None

    def _running(self, name: str, action: str) -> ManagedProcess:
        record = self._record(name)
        if not record.running:
            raise self._not_running(name, action)
        return record.proc  # type: ignore[return-value]
