"""The ``local`` backend: the reference cluster's services as subprocesses on 127.0.0.1.

Each service runs in its own process group (see :mod:`harness.processes`) with stdout+stderr in
``<workdir>/logs/<name>.log``; the gateway's catalog lives in ``<workdir>/gateway-data``. Start order
follows the contract: gateway, then the preloaded versions through the admin API, then the workers
(concurrently), each awaited until the gateway lists it holding the ``production`` versions.

Extension point: :meth:`LocalBackend.worker_links` decides the URL a worker advertises and the
gateway URL it registers with. An in-path fault proxy (latency, partitions) subclasses or wraps it to
put itself between the gateway and each worker; restarts reuse the same links.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

import sut
from harness.backends.base import BackendError, ClusterBackend, ClusterSpec, ServiceInfo
from harness.backends.gateway_admin import GatewayAdmin, claim_registrations
from harness.backends.secrets import JOIN_TOKEN, SecretFiles
from harness.faults.links import FaultLinks
from harness.faults.service_memory import ServiceMemoryLimits
from harness.processes import ManagedProcess, free_port, spawn
from sut.launcher import gateway_command, trainer_command, worker_command

HOST = "127.0.0.1"
POLL_INTERVAL = 0.02  # seconds between liveness polls: a refused connection costs next to nothing
WORKER_POLL_INTERVAL = 0.05  # each poll is a request the (busy, booting) gateway must serve
_SRC_ROOT = Path(sut.__file__).resolve().parent.parent  # so `python -m sut.*` imports this checkout


_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclass(frozen=True)
class WorkerLinks:
    advertise_url: str  # how the gateway reaches the worker
    gateway_url: str  # where the worker registers and heartbeats


@dataclass
class _Service:
    name: str
    kind: str  # "gateway" | "worker" | "trainer" | "stranger"
    url: str  # reachable from the test process
    argv: list[str]
    log_path: Path
    advertise_url: str = ""  # workers: the URL the gateway lists them under
    proc: ManagedProcess | None = None
    worker_id: str | None = None  # the id the gateway gave at the last awaited registration

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()


class LocalBackend(ClusterBackend):
    name = "local"

    def __init__(self, workdir: Path, *, startup_timeout: float = 30.0, python: str = sys.executable) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self.python = python
        self.spec: ClusterSpec | None = None
        self._services: dict[str, _Service] = {}
        self._admin: GatewayAdmin | None = None
        self._next_worker = 1
        # seconds from start() to: gateway live, preload registered, workers registered (benchmarks)
        self.startup_timings: dict[str, float] = {}
        self.links: FaultLinks | None = None  # fault proxies on the worker links (spec.fault_links)
        self.memory_limits = ServiceMemoryLimits()  # by service name; re-applied on restart
        self.secrets = SecretFiles(self.workdir / "secrets")  # tokens as files, never on a command line
        self._strangers = 0

    # -- start ---------------------------------------------------------------------------------
    def start(self, spec: ClusterSpec) -> None:
        if self.spec is not None:
            raise BackendError("this backend already started a cluster; use one backend per scenario")
        if spec.artifact_root is None:
            raise BackendError("ClusterSpec.artifact_root is required (build artifacts with fixtures.models)")
        self.spec = spec
        started = time.perf_counter()
        data_dir = self.workdir / "gateway-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(HOST)
        argv = gateway_command(
            port=port,
            data_dir=data_dir,
            artifact_root=Path(spec.artifact_root),
            join_token_file=self.secrets.write(JOIN_TOKEN, spec.join_token),
            join_token_overlap=spec.join_token_overlap,
            host=HOST,
            db=None if spec.db == "sqlite" else spec.db,
            heartbeat_interval=spec.heartbeat_interval,
            upstream_timeout=spec.upstream_timeout,
            python=self.python,
        )
        gateway = _Service("gateway", "gateway", f"http://{HOST}:{port}", argv, self._log_path("gateway"))
        self._services["gateway"] = gateway
        if spec.fault_links:
            self.links = FaultLinks(port)
        self._launch(gateway)
        self._admin = GatewayAdmin(gateway.url, spec.admin_token)
        self._wait_live(gateway)
        self.startup_timings["gateway_live_s"] = time.perf_counter() - started
        for model, version, uri in spec.preload:
            self._admin.register_version(model, version, uri)
        self.startup_timings["preload_s"] = time.perf_counter() - started
        if spec.workers:
            self.add_workers(spec.workers)
        self.startup_timings["workers_registered_s"] = time.perf_counter() - started
        if spec.trainer is not None:
            self._start_trainer(spec)

    @property
    def gateway_url(self) -> str:
        return self._service("gateway").url

    def _start_trainer(self, spec: ClusterSpec) -> None:
        """The drift monitor / retrainer (issue 7): same artifact root as the workers; awaited live."""
        trainer = spec.trainer
        assert trainer is not None
        port = free_port(HOST)
        argv = trainer_command(
            port=port,
            gateway_url=self.gateway_url,
            artifact_root=Path(spec.artifact_root),  # type: ignore[arg-type]
            host=HOST,
            data_dir=self.workdir / "trainer-data",
            interval=trainer.interval,
            window=trainer.window,
            min_window=trainer.min_window,
            psi=trainer.psi,
            ks_p=trainer.ks_p,
            holdout=trainer.holdout,
            python=self.python,
        )
        service = _Service("trainer", "trainer", f"http://{HOST}:{port}", argv, self._log_path("trainer"))
        self._services["trainer"] = service
        self._launch(service)

        def live() -> bool:
            try:
                answer = httpx.get(service.url + "/v2/health/live", timeout=1.0, trust_env=False)
                return answer.status_code == 200
            except httpx.HTTPError:
                return False

        self._poll(f"the trainer to be live at {service.url}", live, [service], interval=0.1)

    def worker_links(self, name: str, port: int) -> WorkerLinks:
        """Extension point: where a worker is reached and where it reaches the gateway."""
        if self.links is not None:  # through fault proxies (see harness.faults.links)
            return WorkerLinks(*self.links.urls_for(name, port))
        return WorkerLinks(advertise_url=f"http://{HOST}:{port}", gateway_url=self.gateway_url)

    def add_workers(self, count: int, *, wait: bool = True, pool: str | None = None) -> list[str]:
        """Start ``count`` workers at once; with ``wait``, until the gateway lists each holding every
        ``production`` version (a worker that cannot load one, e.g. over its memory budget, then fails
        this after ``startup_timeout``: pass ``wait=False`` for such scenarios)."""
        spec = self._started_spec()
        names = []
        for _ in range(count):
            name = f"worker-{self._next_worker}"
            self._next_worker += 1
            port = free_port(HOST)
            links = self.worker_links(name, port)
            argv = worker_command(
                port=port,
                gateway_url=links.gateway_url,
                artifact_root=Path(spec.artifact_root),  # type: ignore[arg-type]
                name=name,
                host=HOST,
                advertise_url=links.advertise_url,
                memory_budget=spec.memory_budget,
                join_token_file=self.secrets.path(JOIN_TOKEN),
                pool=pool,
                python=self.python,
            )
            url = f"http://{HOST}:{port}"
            log_path = self._log_path(name)
            service = _Service(name, "worker", url, argv, log_path, advertise_url=links.advertise_url)
            self._services[name] = service
            self._launch(service)  # no wait between launches: the workers boot concurrently
            names.append(name)
        if wait:
            self._wait_registered(names, stale_ids={})
        return names

    def start_stranger(self, join_token: str | None) -> str:
        """A real worker that presents ``join_token`` (None: none) and registers straight with the
        gateway; not awaited (a gateway that lets no stranger in never lists it)."""
        spec = self._started_spec()
        self._strangers += 1
        name = f"stranger-{self._strangers}"
        port = free_port(HOST)
        token_file = self.secrets.write(f"{name}.join_token", join_token) if join_token else None
        argv = worker_command(
            port=port,
            gateway_url=self.gateway_url,
            artifact_root=Path(spec.artifact_root),  # type: ignore[arg-type]
            name=name,
            host=HOST,
            join_token_file=token_file,
            python=self.python,
        )
        url = f"http://{HOST}:{port}"
        service = _Service(name, "stranger", url, argv, self._log_path(name), advertise_url=url)
        self._services[name] = service
        self._launch(service)
        self._poll(f"{name} to be live at {url}", lambda: _live(url), [service], interval=0.1)
        return name

    def rotate_join_token(self, token: str) -> None:
        self._started_spec()
        self.secrets.write(JOIN_TOKEN, token)

    def command_lines(self, name: str) -> list[str]:
        proc = self._running_proc(name, "read the command line of")
        try:
            raw = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        except OSError as exc:
            raise BackendError(f"cannot read the command line of {name} (pid {proc.pid}): {exc}") from None
        return [raw.replace(b"\0", b" ").decode(errors="replace").strip()]

    # -- lifecycle actions -----------------------------------------------------------------------
    def stop(self, name: str, *, grace: float = 10.0) -> int | None:
        """SIGTERM, wait ``grace`` seconds (plus a one-second margin for the exit itself), then SIGKILL."""
        proc = self._running_proc(name, "stop")
        return proc.terminate(grace + 1.0)

    def kill(self, name: str) -> int | None:
        return self._running_proc(name, "kill").kill()

    def restart(self, name: str) -> None:
        """A fresh process on the same port under the same name; wait until it is live / registered again."""
        service = self._service(name)
        if service.running:
            service.proc.kill()  # type: ignore[union-attr]
        stale: dict[str, set[str]] = {}
        if service.kind == "worker":  # a killed worker stays listed until it expires: not the one we await
            known = {service.worker_id} if service.worker_id else set()
            stale[name] = self._gateway_admin().registered_ids(service.advertise_url) | known
        self._launch(service)
        if service.kind == "gateway":
            self._wait_live(service)
        else:
            self._wait_registered([name], stale_ids=stale)

    def pause(self, name: str) -> None:
        self._running_proc(name, "pause").pause()

    def partition(self, a: str, b: str) -> None:
        self._fault_links().partition(a, b)

    def heal(self, a: str, b: str) -> None:
        self._fault_links().heal(a, b)

    def heal_all(self) -> None:
        if self.links is not None:
            self.links.heal_all()

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        self._fault_links().set_latency(a, b, latency_s, jitter_s)

    def data_file(self, name: str, relative: str) -> Path:
        """Only the gateway keeps data: ``<workdir>/gateway-data/<relative>``."""
        if self._service(name).kind != "gateway":
            raise BackendError(f"{name} keeps no data files; only the gateway does (its catalog database)")
        root = (self.workdir / "gateway-data").resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise BackendError(f"{relative!r} is outside the gateway's data directory {root}")
        return path

    def resume(self, name: str) -> None:
        """SIGCONT; a no-op for a service that is not running (resuming is an undo action)."""
        service = self._service(name)
        if service.running:
            service.proc.resume()  # type: ignore[union-attr]

    # -- inspection ----------------------------------------------------------------------------
    def services(self) -> list[ServiceInfo]:
        return [
            ServiceInfo(s.name, s.kind, s.url, s.running, str(s.proc.pid) if s.proc else "")
            for s in self._services.values()
        ]

    def logs(self, name: str) -> str:
        path = self._service(name).log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def limit_memory(self, name: str, limit_bytes: int | None) -> str:
        """A cgroup (v2/v1) when one is writable, else RLIMIT_AS; see :mod:`harness.faults.service_memory`."""
        if limit_bytes is None:
            self.memory_limits.remove(name)
            return "none"
        pid = self._running_proc(name, "limit the memory of").pid
        return self.memory_limits.apply(name, pid, limit_bytes)

    def oom_killed(self, name: str) -> bool:
        return self.memory_limits.oom_killed(name, self.exit_code(name))

    def exit_code(self, name: str) -> int | None:
        proc = self._service(name).proc
        return None if proc is None else proc.returncode

    def paused(self, name: str) -> bool:
        proc = self._service(name).proc
        return proc is not None and proc.alive() and proc.paused

    def worker_id(self, name: str) -> str | None:
        """The id the gateway gave this worker when the backend last saw it register."""
        return self._service(name).worker_id

    def teardown(self) -> None:
        """Kill every process group (paused ones are resumed first); idempotent, never raises."""
        for service in reversed(list(self._services.values())):
            try:
                if service.proc is not None and service.proc.alive():
                    service.proc.kill()
            except Exception:  # teardown goes on; the atexit registry is the last line of defence
                pass
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        if self.links is not None:
            self.links.close()
        self.memory_limits.remove_all()

    # -- internals -------------------------------------------------------------------------------
    def _log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def _env(self, service: _Service) -> dict[str, str]:
        # Proxy variables are dropped: the services talk only to each other on 127.0.0.1.
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
        env.update(self.spec.env if self.spec else {})
        for variable in ("SUT_ADMIN_TOKEN", "SUT_JOIN_TOKEN"):  # only what each service needs, below
            env.pop(variable, None)
        if service.kind in ("gateway", "trainer") and self.spec is not None:
            env["SUT_ADMIN_TOKEN"] = self.spec.admin_token
        env["PYTHONUNBUFFERED"] = "1"  # logs complete even when the process is killed
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SRC_ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def _launch(self, service: _Service) -> None:
        service.log_path.parent.mkdir(parents=True, exist_ok=True)
        with service.log_path.open("a") as log:
            log.write(f"--- harness: starting {service.name}: {' '.join(service.argv)}\n")
        service.proc = spawn(service.name, service.argv, log_path=service.log_path, env=self._env(service))
        self.memory_limits.reapply(service.name, service.proc.pid)  # a limit survives a restart

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise BackendError(f"no service named {name!r}; known: {sorted(self._services)}") from None

    def _running_proc(self, name: str, action: str) -> ManagedProcess:
        service = self._service(name)
        if not service.running:
            code = self.exit_code(name)
            raise BackendError(f"cannot {action} {name}: it is not running (exit code {code})")
        return service.proc  # type: ignore[return-value]

    def _fault_links(self) -> FaultLinks:
        if self.links is None:
            raise BackendError(
                "this cluster has no fault-injectable links: start it with ClusterSpec(fault_links=True)"
            )
        return self.links

    def _started_spec(self) -> ClusterSpec:
        if self.spec is None or self._admin is None:
            raise BackendError("the cluster is not started (call start() first)")
        return self.spec

    def _log_tail(self, name: str, lines: int = 25) -> str:
        return "\n".join(self.logs(name).splitlines()[-lines:])

    def _poll(
        self,
        what: str,
        check: Callable[[], bool],
        watched: Iterable[_Service],
        interval: float = POLL_INTERVAL,
    ) -> None:
        """Call ``check`` until it is true; fail early, with its log, if a watched process exits."""
        deadline = time.monotonic() + self.startup_timeout
        watched = list(watched)
        while True:
            if check():
                return
            for service in watched:
                if not service.running:
                    code = self.exit_code(service.name)
                    raise BackendError(
                        f"{service.name} exited (code {code}) while waiting for {what}; "
                        f"last lines of its log ({service.log_path}):\n{self._log_tail(service.name)}"
                    )
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {s.name}:\n{self._log_tail(s.name)}" for s in watched)
                raise BackendError(f"timed out after {self.startup_timeout:.0f}s waiting for {what}\n{tails}")
            time.sleep(interval)

    def _gateway_admin(self) -> GatewayAdmin:
        if self._admin is None:
            raise BackendError("the cluster is not started")
        return self._admin

    def _wait_live(self, gateway: _Service) -> None:
        self._poll(f"the gateway to be live at {gateway.url}", self._gateway_admin().live, [gateway])

    def _production_versions(self) -> set[tuple[str, str]]:
        """What every new worker must hold: each model's ``production`` version, per the gateway."""
        answers: list[set[tuple[str, str]]] = []

        def read() -> bool:
            wanted = self._gateway_admin().production_versions()
            if wanted is not None:
                answers.append(wanted)
            return bool(answers)

        self._poll("the gateway's /admin/status", read, [self._service("gateway")])
        return answers[0]

    def _wait_registered(self, names: list[str], *, stale_ids: dict[str, set[str]]) -> None:
        """Until the gateway lists each worker (under an id not in ``stale_ids``) holding production."""
        services = [self._service(n) for n in names]
        wanted = self._production_versions()
        pending = {s.advertise_url: s for s in services}

        def all_registered() -> bool:
            listed = self._gateway_admin().listed_workers()
            claim_registrations(listed, pending, stale_ids=stale_ids, wanted=wanted)
            return not pending

        versions = ", ".join(f"{m} v{v}" for m, v in sorted(wanted)) or "no versions"
        what = f"{', '.join(names)} to register holding {versions}"
        self._poll(what, all_registered, services, interval=WORKER_POLL_INTERVAL)


def _live(url: str) -> bool:
    try:
        return httpx.get(url + "/v2/health/live", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
