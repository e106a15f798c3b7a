"""The World: one per scenario, the only state steps share.

It holds the target (the serving system under test: what it can do, its models), the backend it runs
on (None for a deployment the harness did not start), the drivers that talk to the services, every
recorded observation, named instants (``marks``) that delimit windows such as "during the swap", the
running load, a typed :attr:`stash` for what steps hand each other, and a LIFO stack of undo actions
(faults to heal, processes to stop) that :meth:`close` runs even when a step failed or the run was
interrupted. Steps act on services only through the World's methods and drivers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _pytest.stash import Stash

from harness import trace
from harness.backends.base import Backend, BackendError, ServiceInfo
from harness.observations import Observations
from harness.targets.base import CapabilityMissing, ModelSpec, Target, TargetError

if TYPE_CHECKING:
    from harness.drivers.gateway import GatewayClient
    from harness.drivers.trainer import TrainerClient
    from harness.drivers.v2 import V2Client
    from harness.faults.files import Corruption
    from harness.load.runner import LoadRun
    from harness.load.workers import WorkerSite
    from harness.targets.reference import ClusterSpec, ReferenceTarget

log = logging.getLogger(__name__)

TargetFactory = Callable[["World"], Target]


class World:
    def __init__(
        self, backend: Backend | None, *, workdir: Path, target: TargetFactory | None = None
    ) -> None:
        self.backend = backend
        self.workdir = Path(workdir)  # scenario scratch space (artifacts, load samples, logs)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.observations = Observations()
        self.marks: dict[str, float] = {}
        self.load: LoadRun | None = None
        self.artifacts: dict[tuple[str, str], Any] = {}  # (model, version) -> fixtures Artifact
        self.answers: dict[str, Any] = {}  # the latest answer of each admin action ("swap", "rollback")
        self.stash = Stash()  # typed keys (pytest.StashKey) for what steps hand each other
        self.memory_limits: dict[str, tuple[int, str]] = {}  # service -> (bytes, mechanism used)
        self.database: Any = None  # a harness-run catalog database server (start_database)
        self._v2: V2Client | None = None
        self._gateway: GatewayClient | None = None
        self._trainer: TrainerClient | None = None
        self._undo: list[tuple[str, Callable[[], object]]] = []
        if target is None:
            from harness.targets.reference import ReferenceTarget

            target = ReferenceTarget
        self.target: Target = target(self)
        self.defer("release the target", self.target.teardown)

    @property
    def backend_name(self) -> str:
        """Where the scenario's services run ("local", "docker"; "none" for a deployment not started here)."""
        return self.backend.name if self.backend is not None else "none"

    # -- capabilities ------------------------------------------------------------------------
    def require(self, *capabilities: str) -> None:
        """Raise :class:`CapabilityMissing` (the scenario is skipped) unless the target has them all."""
        for capability in capabilities:
            self.target.require(capability)

    @property
    def reference(self) -> ReferenceTarget:
        """The reference cluster target (steps that need ``workers``, ``admin``, ``trainer`` ...)."""
        from harness.targets.reference import ReferenceTarget

        if not isinstance(self.target, ReferenceTarget):
            raise CapabilityMissing(self.target.name, "workers")
        return self.target

    @property
    def spec(self) -> ClusterSpec | None:
        """The reference cluster's spec once started (None otherwise)."""
        from harness.targets.reference import ReferenceTarget

        return self.target.cluster.spec if isinstance(self.target, ReferenceTarget) else None

    # -- models and serving ------------------------------------------------------------------
    def model(self, name: str) -> ModelSpec:
        return self.target.model(name)

    def prepare_models(self, model: str, versions: tuple[str, ...]) -> None:
        trace.touch("file", f"prepare {model} {versions}")
        self.target.prepare_models(model, versions)

    def serve(self, model: str, version: str, **options: Any) -> None:
        """Start (or, for an external deployment, check) the target serving ``model`` ``version``."""
        trace.touch("backend", f"serve {model} {version}")
        self.target.serve(model, version, **options)

    def start_cluster(self, spec: ClusterSpec) -> None:
        """Start the reference cluster as ``spec`` says (needs the ``workers`` capability)."""
        self.require("workers")
        trace.touch("backend", "start")
        self.reference.start_cluster(spec)

    # -- drivers ---------------------------------------------------------------------------------
    @property
    def v2(self) -> V2Client:
        """The V2 client for the target's front door; every inference answer is recorded."""
        if self._v2 is None:
            from harness.drivers.v2 import V2Client

            self._v2 = V2Client(
                self.target.inference_url,
                models=self.model,
                observations=self.observations,
                headers=self.target.headers(),
                verify=getattr(self.target, "verify", True),
                timeout=getattr(self.target, "timeout", 10.0),
            )
            self.defer("close the V2 client", self._v2.close)
        return self._v2

    @property
    def gateway(self) -> GatewayClient:
        """The reference gateway's client (V2 + admin API); needs the ``admin`` capability."""
        self.require("admin")
        if self._gateway is None:
            from harness.drivers.gateway import GatewayClient

            if self.reference.cluster.spec is None:
                raise TargetError(
                    "this step needs a cluster, and none was started: add a step like "
                    "'Given a cluster with 2 workers serving demo version \"1\"' before it"
                )
            self._gateway = GatewayClient(
                self.target.inference_url,
                admin_token=self.reference.admin_token,
                models=self.model,
                observations=self.observations,
            )
            self.defer("close the gateway client", self._gateway.close)
        return self._gateway

    @property
    def trainer(self) -> TrainerClient:
        """The client for the cluster's trainer (drift verdicts, retraining runs)."""
        self.require("trainer")
        if self._trainer is None:
            from harness.drivers.trainer import TrainerClient

            if self.spec is None or self.spec.trainer is None:
                raise TargetError(
                    "this step needs a drift trainer, and the scenario's cluster has none: add the step "
                    "'And the cluster has a drift trainer checking every 0.5 seconds' after its cluster step"
                )
            self._trainer = TrainerClient(self._backend().url("trainer"))
            self.defer("close the trainer client", self._trainer.close)
        return self._trainer

    # -- lifecycle actions on services (each one touches the backend, for the stub report) ---------
    def stop_service(self, name: str, grace: float = 10.0) -> int | None:
        """Graceful stop (SIGTERM, drain); the exit code."""
        self.require("lifecycle")
        trace.touch("backend", f"stop {name}")
        return self._backend().stop(name, grace=grace)

    def kill_service(self, name: str) -> int | None:
        """SIGKILL; the exit code (-9 on the local backend, 137 on docker)."""
        self.require("lifecycle")
        trace.touch("backend", f"kill {name}")
        return self._backend().kill(name)

    def restart_service(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """A fresh process under the same name and address (its environment changed by ``env``); returns
        once the target says it is back (a worker registered again, a gateway live again)."""
        self.require("lifecycle")
        trace.touch("backend", f"restart {name}")
        self.target.restart(name, env)

    def pause(self, name: str) -> None:
        """Freeze a service (SIGSTOP / docker pause); resumed at teardown if a step does not."""
        self.require("lifecycle")
        trace.touch("backend", f"pause {name}")
        backend = self._backend()
        backend.pause(name)
        self.defer(f"resume {name}", lambda: backend.resume(name))

    def resume(self, name: str) -> None:
        trace.touch("backend", f"resume {name}")
        self._backend().resume(name)

    def load_site(self) -> WorkerSite:
        """Where the load workers of master/worker mode run: beside the target's front door on its
        backend (containers on the scenario network on docker), else processes on this machine."""
        service = self.target.inference_service
        if self.backend is None or service is None:
            from harness.load.workers import ProcessSite

            return ProcessSite()
        return self.backend.load_site(service)

    def services(self) -> list[ServiceInfo]:
        """Every service the backend runs (or ran) in this scenario."""
        trace.touch("backend", "services")
        return self._backend().services()

    def service(self, name: str) -> ServiceInfo:
        trace.touch("backend", f"service {name}")
        return self._backend().service(name)

    def exit_code(self, name: str) -> int | None:
        trace.touch("backend", f"exit code {name}")
        return self._backend().exit_code(name)

    def process_left(self, name: str) -> bool:
        """Whether anything of service ``name``'s last process (group) or container still runs."""
        trace.touch("backend", f"leftovers of {name}")
        backend = self._backend()
        alive = getattr(backend, "process_group_alive", None)
        return bool(alive(name)) if callable(alive) else backend.service(name).running

    def memory_usage(self, name: str) -> int | None:
        """Resident memory of a service, measured from outside it (bytes)."""
        self.require("memory")
        trace.touch("backend", f"memory of {name}")
        return self._backend().memory_usage(name)

    # -- network faults between two services ("gateway", "worker-2"); healed at teardown ------------
    def partition(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` both ways (neither is told); healed at teardown."""
        self.require("links")
        trace.touch("fault", f"partition {a} <-> {b}")
        backend = self._backend()
        self._apply_fault(lambda: backend.partition(a, b), f"heal {a} <-> {b}", lambda: backend.heal(a, b))

    def heal(self, a: str, b: str) -> None:
        """Undo every fault on the link between ``a`` and ``b`` (partition and latency)."""
        trace.touch("fault", f"heal {a} <-> {b}")
        self._backend().heal(a, b)

    def add_latency(self, a: str, b: str, ms: float, jitter_ms: float = 0.0) -> None:
        """Make every exchange on the connections ``a`` opens to ``b`` ``ms`` slower; removed at teardown."""
        self.require("links")
        trace.touch("fault", f"latency {a} -> {b} +{ms:g} ms")
        backend = self._backend()
        self._apply_fault(
            lambda: backend.set_latency(a, b, ms / 1000.0, jitter_ms / 1000.0),
            f"remove latency {a} -> {b}",
            lambda: backend.set_latency(a, b, 0.0),
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
        self.require("memory")
        trace.touch("fault", f"memory limit {name} {limit_bytes} bytes")
        mechanism = self._backend().limit_memory(name, limit_bytes)
        self.memory_limits[name] = (limit_bytes, mechanism)
        self.defer(f"lift the memory limit of {name}", lambda: self._lift_memory_limit(name))
        return mechanism

    def _lift_memory_limit(self, name: str) -> None:
        if self.memory_limits.pop(name, None) is None:
            return
        backend = self._backend()
        try:
            backend.limit_memory(name, None)
        except BackendError:
            if backend.exit_code(name) is None:  # a dead container holds no limit; a live one does
                raise

    def oom_killed(self, name: str) -> bool:
        """The kernel killed the service's current process for exceeding its memory limit."""
        trace.touch("backend", f"oom_killed {name}")
        return self._backend().oom_killed(name)

    # -- the catalog's storage: damaged files, a database server killed and restarted -----------------
    def corrupt_file(
        self, service: str, relative: str, mode: str = "header", seed: int = 0, pages: int = 3
    ) -> Corruption:
        """Overwrite part of a file ``service`` keeps on disk (``mode`` "header", or "pages": ``pages``
        random pages; see :func:`harness.faults.files.corrupt_file`) while it runs. Nothing to undo: the
        damage is the service's to detect and repair."""
        from harness.faults.files import corrupt_file

        self.require("catalog-db")
        path = self._backend().data_file(service, relative)
        trace.touch("fault", f"corrupt {service}:{relative} ({mode})")
        if not path.is_file():
            raise BackendError(f"{service} has no file {relative!r} to corrupt (looked at {path})")
        return corrupt_file(path, mode=mode, pages=pages, seed=seed)

    def build_artifact(self, model: str, version: str, build: Callable[[Path], Any]) -> Any:
        """Write a model artifact the services will load (``build(artifact_root)`` returns it) into the
        target's artifact root, and keep it as the scenario's artifact of ``model`` ``version``."""
        trace.touch("file", f"build {model} v{version}")
        artifact = build(self.reference.artifact_root)
        self.artifacts[(model, version)] = artifact
        return artifact

    def delete_artifact(self, relative: str) -> None:
        """Remove an artifact file the catalog knows (the artifact store lost it)."""
        trace.touch("file", f"delete {relative}")
        (self.reference.artifact_root / relative).unlink()

    def read_artifact(self, relative: str) -> bytes:
        """The bytes of an artifact file the services wrote or read (``relative`` to the artifact root)."""
        trace.touch("file", f"read {relative}")
        return (self.reference.artifact_root / relative).read_bytes()

    def data_file(self, service: str, relative: str) -> Path:
        trace.touch("file", f"{service}:{relative}")
        return self._backend().data_file(service, relative)

    def start_database(self) -> str:
        """Start a PostgreSQL server for the catalog; the DSN the services use (the harness's own is
        ``database.host_dsn``). Stopped and removed at teardown."""
        self.require("catalog-db")
        trace.touch("backend", "start database")
        backend = self._backend()
        server = backend.database_server()
        self.defer("tear down the backend", backend.teardown)  # a database container is on its network
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

    def _database(self) -> Any:
        if self.database is None:
            raise TargetError(
                "this step needs the catalog in a database server, and the scenario has none: add the step "
                "'And the cluster keeps its catalog in a PostgreSQL server' after its cluster step"
            )
        return self.database

    # -- credentials: strangers, the join token's rotation, what `ps` shows ----------------------------
    def start_stranger(self, join_token: str | None) -> str:
        """Start a real worker that presents ``join_token`` (None: no token) instead of the cluster's
        join token; it keeps trying to register. Stopped at teardown with the cluster. Its name."""
        self.require("workers")
        trace.touch("backend", "start a stranger's worker")
        return self.reference.cluster.start_stranger(join_token)

    def rotate_join_token(self, token: str) -> None:
        """Rewrite the cluster's join token file (the services re-read it; nothing restarts)."""
        self.require("workers")
        trace.touch("backend", "rotate the join token")
        self.reference.cluster.rotate_join_token(token)

    def command_lines(self, name: str) -> list[str]:
        """The command lines of a service's processes, as any user of the machine sees them in ``ps``."""
        self.require("lifecycle")
        trace.touch("backend", f"command lines of {name}")
        return self._backend().command_lines(name)

    # -- workers of the reference cluster ----------------------------------------------------------
    def add_workers(
        self, count: int, *, wait: bool = True, boot_timeout: float | None = None, pool: str | None = None
    ) -> list[str]:
        """Start ``count`` workers at once (in ``pool``: a provider's pool of workers; None: the default)."""
        self.require("workers")
        trace.touch("backend", f"add {count} workers" + (f" to pool {pool}" if pool else ""))
        return self.reference.cluster.add_workers(count, wait=wait, boot_timeout=boot_timeout, pool=pool)

    def running_workers(self) -> list[ServiceInfo]:
        self.require("workers")
        trace.touch("backend", "services")
        return [s for s in self._backend().services() if s.kind == "worker" and s.running]

    def worker_id(self, name: str) -> str | None:
        """The id the gateway gave worker ``name`` at its last awaited registration."""
        return self.reference.cluster.worker_id(name)

    def logs(self, name: str) -> str:
        trace.touch("backend", f"logs {name}")
        return self._backend().logs(name)

    def _backend(self) -> Backend:
        if self.backend is None:
            raise CapabilityMissing(self.target.name, "lifecycle")
        return self.backend

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
        """Run every undo action, newest first, then tear the backend down; return the ones that failed
        (never raises)."""
        if self.backend is not None:
            self._undo.insert(0, ("tear down the backend", self.backend.teardown))
        errors: list[str] = []
        while self._undo:
            description, action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # teardown must go on
                log.warning("cleanup %r failed: %s", description, exc)
                errors.append(f"{description}: {exc}")
        return errors
