"""The World: one per scenario, the only state steps share.

It holds the cluster backend, the drivers that talk to the services, every recorded observation,
named instants (``marks``) that delimit windows such as "during the swap", the running load, and a
LIFO stack of undo actions (faults to heal, processes to stop) that :meth:`close` runs even when a
step failed or the run was interrupted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import trace
from harness.backends.base import BackendError, ClusterBackend, ClusterSpec, ServiceInfo
from harness.observations import Observations

if TYPE_CHECKING:
    from harness.drivers.gateway import GatewayClient
    from harness.drivers.trainer import TrainerClient
    from harness.faults.files import Corruption
    from harness.load.runner import LoadRun
    from harness.postgres import PostgresServer
    from harness.postgres_container import PostgresContainer

log = logging.getLogger(__name__)


class World:
    def __init__(self, backend: ClusterBackend, *, workdir: Path) -> None:
        self.backend = backend
        self.workdir = Path(workdir)  # scenario scratch space (artifacts, load samples, logs)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.spec: ClusterSpec | None = None
        self.observations = Observations()
        self.marks: dict[str, float] = {}
        self.load: LoadRun | None = None
        self.artifacts: dict[tuple[str, str], Any] = {}  # (model, version) -> fixtures Artifact
        self.answers: dict[str, Any] = {}  # the latest answer of each admin action ("swap", "rollback")
        self._gateway: GatewayClient | None = None
        self._trainer: TrainerClient | None = None
        self._undo: list[tuple[str, Callable[[], object]]] = []
        self.memory_limits: dict[str, tuple[int, str]] = {}  # service -> (bytes, mechanism used)
        # a harness-run catalog database (start_database): a host process, or a container (docker backend)
        self.database: PostgresServer | PostgresContainer | None = None

    # -- cluster ----------------------------------------------------------------------------
    def start_cluster(self, spec: ClusterSpec) -> None:
        trace.touch("backend", "start")
        self.spec = spec
        self.defer("tear down the cluster", self.backend.teardown)
        self.backend.start(spec)

    @property
    def gateway(self) -> GatewayClient:
        """The client for the cluster's front door; every call is recorded in ``observations``."""
        if self._gateway is None:
            from harness.drivers.gateway import GatewayClient

            if self.spec is None:
                raise RuntimeError(
                    "no cluster started in this scenario (missing a 'Given a cluster ...' step?)"
                )
            self._gateway = GatewayClient(
                self.backend.gateway_url, admin_token=self.spec.admin_token, observations=self.observations
            )
            self.defer("close the gateway client", self._gateway.close)
        return self._gateway

    @property
    def trainer(self) -> TrainerClient:
        """The client for the cluster's trainer (drift verdicts, retraining runs); needs ``spec.trainer``."""
        if self._trainer is None:
            from harness.drivers.trainer import TrainerClient

            if self.spec is None or self.spec.trainer is None:
                raise RuntimeError("no trainer in this scenario's cluster (start one with a trainer step)")
            self._trainer = TrainerClient(self.backend.service("trainer").url)
            self.defer("close the trainer client", self._trainer.close)
        return self._trainer

    # -- lifecycle actions on services (each one touches the backend, for the stub report) ---------
    def stop_worker(self, name: str, grace: float = 10.0) -> int | None:
        """Graceful stop (SIGTERM, drain); the exit code."""
        trace.touch("backend", f"stop {name}")
        return self.backend.stop(name, grace=grace)

    def kill_worker(self, name: str) -> int | None:
        """SIGKILL; the exit code (-9 on the local backend)."""
        trace.touch("backend", f"kill {name}")
        return self.backend.kill(name)

    def restart_worker(self, name: str) -> None:
        """A fresh process under the same name and address; returns once it has registered again."""
        trace.touch("backend", f"restart {name}")
        self.backend.restart(name)

    def pause(self, name: str) -> None:
        """Freeze a service (SIGSTOP / docker pause); resumed at teardown if a step does not."""
        trace.touch("backend", f"pause {name}")
        self.backend.pause(name)
        self.defer(f"resume {name}", lambda: self.backend.resume(name))

    def resume(self, name: str) -> None:
        trace.touch("backend", f"resume {name}")
        self.backend.resume(name)

    # -- network faults between two services ("gateway", "worker-2"); healed at teardown ------------
    def partition(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` both ways (neither is told); healed at teardown."""
        trace.touch("fault", f"partition {a} <-> {b}")
        self._apply_fault(
            lambda: self.backend.partition(a, b), f"heal {a} <-> {b}", lambda: self.backend.heal(a, b)
        )

    def heal(self, a: str, b: str) -> None:
        """Undo every fault on the link between ``a`` and ``b`` (partition and latency)."""
        trace.touch("fault", f"heal {a} <-> {b}")
        self.backend.heal(a, b)

    def add_latency(self, a: str, b: str, ms: float, jitter_ms: float = 0.0) -> None:
        """Make every exchange on the connections ``a`` opens to ``b`` ``ms`` slower; removed at teardown."""
        trace.touch("fault", f"latency {a} -> {b} +{ms:g} ms")
        self._apply_fault(
            lambda: self.backend.set_latency(a, b, ms / 1000.0, jitter_ms / 1000.0),
            f"remove latency {a} -> {b}",
            lambda: self.backend.set_latency(a, b, 0.0),
        )

    def _apply_fault(self, apply: Callable[[], object], description: str, undo: Callable[[], object]) -> None:
        """Apply a fault and register its undo; a fault that failed half-way is undone at once."""
        try:
            apply()
        except Exception:
            try:
                undo()
            except Exception as exc:  # the original error is the one to report
                log.warning("undoing a failed fault (%s) failed too: %s", description, exc)
            raise
        self.defer(description, undo)

    # -- memory limits: the kernel's OOM killer; lifted at teardown -----------------------------------
    def limit_memory(self, name: str, limit_bytes: int) -> str:
        """Hard memory limit on a service (also after a restart); the mechanism used, also kept in
        ``memory_limits`` so that steps and reports can say which one it was."""
        trace.touch("fault", f"memory limit {name} {limit_bytes} bytes")
        mechanism = self.backend.limit_memory(name, limit_bytes)
        if not isinstance(mechanism, str):  # a backend that does not say uses its own: docker's mem_limit
            mechanism = self.backend.name
        self.memory_limits[name] = (limit_bytes, mechanism)
        self.defer(f"lift the memory limit of {name}", lambda: self._lift_memory_limit(name))
        return mechanism

    def _lift_memory_limit(self, name: str) -> None:
        if self.memory_limits.pop(name, None) is None:
            return
        try:
            self.backend.limit_memory(name, None)
        except BackendError:
            if self.backend.exit_code(name) is None:  # a dead container holds no limit; a live one does
                raise

    def oom_killed(self, name: str) -> bool:
        """The kernel killed the service's current process for exceeding its memory limit."""
        trace.touch("backend", f"oom_killed {name}")
        return self.backend.oom_killed(name)

    # -- the catalog's storage: damaged files, a database server killed and restarted -----------------
    def corrupt_file(self, service: str, relative: str, mode: str = "header", seed: int = 0) -> Corruption:
        """Overwrite part of a file ``service`` keeps on disk (``mode`` "header" or "pages", see
        :func:`harness.faults.files.corrupt_file`) while it runs. Nothing to undo: the damage is the
        service's to detect and repair."""
        from harness.faults.files import corrupt_file

        path = self.backend.data_file(service, relative)
        trace.touch("fault", f"corrupt {service}:{relative} ({mode})")
        if not path.is_file():
            raise BackendError(f"{service} has no file {relative!r} to corrupt (looked at {path})")
        return corrupt_file(path, mode=mode, seed=seed)

    def start_database(self) -> str:
        """Start a PostgreSQL server for the catalog; the DSN the gateway uses, for ``ClusterSpec.db``
        (the harness's own is ``database.host_dsn``). A backend whose services cannot reach the host's
        127.0.0.1 (docker) supplies one on its network (``database_server()``: a container); else
        :mod:`harness.postgres` runs one on the host. Stopped and removed at teardown."""
        trace.touch("backend", "start database")
        server: PostgresServer | PostgresContainer
        backend_server = getattr(self.backend, "database_server", None)
        if callable(backend_server):
            self.defer("tear down the cluster", self.backend.teardown)  # the server is on its network
            server = backend_server()
        else:
            from harness.postgres import PostgresServer

            server = PostgresServer()
        self.defer("stop the database server", server.close)
        server.start()
        self.database = server
        return server.dsn

    def kill_database(self) -> int:
        """SIGKILL the database server (postmaster and backends); its pid."""
        trace.touch("fault", "kill database")
        return self._database().kill()

    def restart_database(self) -> None:
        """Start the killed database server again: same port, same data (after its crash recovery)."""
        trace.touch("backend", "restart database")
        self._database().start()

    def _database(self) -> PostgresServer | PostgresContainer:
        if self.database is None:
            raise RuntimeError("no database server in this scenario (missing a step that starts one?)")
        return self.database

    # -- credentials: strangers, the join token's rotation, what `ps` shows ----------------------------
    def start_stranger(self, join_token: str | None) -> str:
        """Start a real worker that presents ``join_token`` (None: no token) instead of the cluster's
        join token; it keeps trying to register. Stopped at teardown with the cluster. Its name."""
        trace.touch("backend", "start a stranger's worker")
        return self.backend.start_stranger(join_token)

    def rotate_join_token(self, token: str) -> None:
        """Rewrite the cluster's join token file (the services re-read it; nothing restarts)."""
        trace.touch("backend", "rotate the join token")
        if self.spec is None:
            raise RuntimeError("no cluster started in this scenario (missing a 'Given a cluster ...' step?)")
        self.backend.rotate_join_token(token)
        self.spec.join_token = token

    def command_lines(self, name: str) -> list[str]:
        """The command lines of a service's processes, as any user of the machine sees them in ``ps``."""
        trace.touch("backend", f"command lines of {name}")
        return self.backend.command_lines(name)

    def add_workers(self, count: int, *, wait: bool = True, pool: str | None = None) -> list[str]:
        trace.touch("backend", f"add {count} workers" + (f" to pool {pool}" if pool else ""))
        if pool is None:
            return self.backend.add_workers(count, wait=wait)
        return self.backend.add_workers(count, wait=wait, pool=pool)

    def running_workers(self) -> list[ServiceInfo]:
        trace.touch("backend", "services")
        return [s for s in self.backend.workers() if s.running]

    def logs(self, name: str) -> str:
        trace.touch("backend", f"logs {name}")
        return self.backend.logs(name)

    # -- time windows -----------------------------------------------------------------------
    def mark(self, name: str) -> float:
        """Record a named wall-clock instant, e.g. ``swap_started``."""
        self.marks[name] = now = time.time()
        return now

    def window(self, start: str, end: str) -> tuple[float, float]:
        missing = [m for m in (start, end) if m not in self.marks]
        if missing:
            raise AssertionError(f"window {start}..{end}: no mark {missing} recorded by an earlier step")
        return self.marks[start], self.marks[end]

    # -- cleanup ----------------------------------------------------------------------------
    def defer(self, description: str, action: Callable[[], object]) -> None:
        """Run ``action`` at teardown (LIFO), whatever happens to the scenario."""
        self._undo.append((description, action))

    def close(self) -> list[str]:
        """Run every undo action, newest first; return the ones that failed (never raises)."""
        errors: list[str] = []
        while self._undo:
            description, action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # teardown must go on
                log.warning("cleanup %r failed: %s", description, exc)
                errors.append(f"{description}: {exc}")
        return errors
