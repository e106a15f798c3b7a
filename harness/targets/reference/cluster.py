"""Start order and registration of the reference cluster, on any backend.

The contract (docs/architecture.md): the gateway, awaited live; the preloaded versions registered
through the admin API; the workers, started at once and each awaited until the gateway lists it (under
a fresh id) holding every ``production`` version; then the trainer, if asked for. A worker restarted
here is awaited the same way, so the next step never races its registration.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

from harness.backends.base import Backend, BackendError
from harness.targets.base import TargetError
from harness.targets.reference import services
from harness.targets.reference.admin import GatewayAdmin, claim_registrations
from harness.targets.reference.secrets import JOIN_TOKEN, SecretFiles
from harness.targets.reference.spec import ClusterSpec
from harness.waiting import ServiceExited, WaitTimeout, Watch, until

WORKER_POLL_INTERVAL = 0.05  # each poll is a request the (busy, booting) gateway must serve


@dataclass
class _Pending:
    name: str
    advertise_url: str
    worker_id: str | None = None


class ReferenceCluster:
    """One reference cluster on one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.spec: ClusterSpec | None = None
        self.admin: GatewayAdmin | None = None
        self._next_worker = 1
        self._worker_ids: dict[str, str] = {}  # worker name -> id at its last awaited registration
        self.startup_timings: dict[str, float] = {}  # seconds from start(): gateway live, preload, workers
        self.secrets = SecretFiles(backend.workdir / "secrets")  # tokens as files, never on a command line
        self._strangers = 0

    # -- start ---------------------------------------------------------------------------------
    def start(self, spec: ClusterSpec) -> None:
        if self.spec is not None:
            raise TargetError("this cluster was started already; use one per scenario")
        if spec.artifact_root is None:
            raise TargetError("ClusterSpec.artifact_root is required (build artifacts with fixtures.models)")
        self.spec = spec
        started = time.perf_counter()
        self.secrets.write(JOIN_TOKEN, spec.join_token)
        self.backend.launch(services.gateway(spec, self.secrets.root))
        self.admin = GatewayAdmin(self.gateway_url, spec.admin_token)
        self.startup_timings["gateway_live_s"] = time.perf_counter() - started
        for model, version, uri in spec.preload:
            self.admin.register_version(model, version, uri)
        self.startup_timings["preload_s"] = time.perf_counter() - started
        if spec.workers:
            self.add_workers(spec.workers)
        self.startup_timings["workers_registered_s"] = time.perf_counter() - started
        if spec.trainer is not None:
            self.backend.launch(services.trainer(spec))

    @property
    def gateway_url(self) -> str:
        return self.backend.url("gateway")

    def add_workers(
        self, count: int, *, wait: bool = True, boot_timeout: float | None = None, pool: str | None = None
    ) -> list[str]:
        """Start ``count`` workers at once; with ``wait``, until the gateway lists each holding every
        ``production`` version (a worker that cannot load one, e.g. over its memory budget, then fails
        this: pass ``wait=False`` for such scenarios). ``boot_timeout`` overrides how long each may take
        to answer on its own port (dozens booting on a small machine take longer than one). ``pool``: the
        provider pool the workers join (``--pool``; None: the default pool)."""
        spec = self._started()
        names = [f"worker-{self._next_worker + i}" for i in range(count)]
        self._next_worker += count
        self.backend.launch_all(
            services.worker(spec, name, self.secrets.root, pool=pool, startup_timeout=boot_timeout)
            for name in names
        )
        if wait:
            self.wait_registered(names, stale_ids={})
        return names

    # -- credentials ------------------------------------------------------------------------------
    def start_stranger(self, join_token: str | None) -> str:
        """A real worker that presents ``join_token`` (None: none) and keeps trying to register; awaited
        live, not registered (a gateway that lets no stranger in never lists it). Its name."""
        spec = self._started()
        self._strangers += 1
        name = f"stranger-{self._strangers}"
        token_file = None
        if join_token:
            token_file = f"{name}.join_token"
            self.secrets.write(token_file, join_token)
        self.backend.launch(
            services.worker(spec, name, self.secrets.root, token_file=token_file, kind="stranger")
        )
        return name

    def rotate_join_token(self, token: str) -> None:
        """Rewrite the cluster's join token file: the gateway and the workers re-read it, no restart."""
        spec = self._started()
        self.secrets.write(JOIN_TOKEN, token)
        spec.join_token = token

    # -- lifecycle with the state it promises ----------------------------------------------------
    def restart(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """A fresh process under the same name and address; a worker is awaited until the gateway lists
        it under a new id holding production; the gateway until it is live and the workers it listed
        before (else every running worker) have registered with it again, holding production."""
        stale: dict[str, set[str]] = {}
        kind = self.backend.spec(name).kind
        if kind == "worker":  # a killed worker stays listed until it expires
            known = {self._worker_ids[name]} if name in self._worker_ids else set()
            stale[name] = self._admin().registered_ids(self._advertise_url(name)) | known
        elif kind == "gateway":
            stale = self._listed_ids()
        self.backend.restart(name, env)
        if kind == "worker":
            self.wait_registered([name], stale_ids=stale)
        elif kind == "gateway" and stale:
            self.wait_registered(sorted(stale), stale_ids=stale)

    def _listed_ids(self) -> dict[str, set[str]]:
        """Running worker name -> the ids the gateway lists it under now; when the gateway does not answer,
        every running worker (with no id)."""
        running = [s.name for s in self.backend.services() if s.kind == "worker" and s.running]
        listed = self._admin().get("/admin/workers")
        if isinstance(listed, dict):
            listed = listed.get("workers")
        if not isinstance(listed, list):
            return {n: set() for n in running}
        out: dict[str, set[str]] = {}  # a listed worker that no longer runs will not register again
        by_url = {self._advertise_url(n): n for n in running}
        for worker in listed:
            service = by_url.get(str(worker.get("url", "")).rstrip("/"))
            if service is not None:
                out.setdefault(service, set()).add(str(worker.get("id")))
        return out

    def worker_id(self, name: str) -> str | None:
        """The id the gateway gave this worker when the cluster last saw it register."""
        return self._worker_ids.get(name)

    def wait_registered(self, names: list[str], *, stale_ids: dict[str, set[str]]) -> None:
        """Until the gateway lists each worker (under an id not in ``stale_ids``) holding production."""
        admin = self._admin()
        watch = Watch(self.backend, ("gateway", *names))
        try:
            wanted = until(
                admin.production_versions,
                lambda v: v is not None,
                timeout=self.backend.startup_timeout,
                what="the gateway's /admin/status",
                watch=watch,
            )
            pending = {self._advertise_url(n): _Pending(n, self._advertise_url(n)) for n in names}
            found = list(pending.values())

            def all_registered() -> bool:
                claim_registrations(admin.listed_workers(), pending, stale_ids=stale_ids, wanted=wanted)
                return not pending

            versions = ", ".join(f"{m} v{v}" for m, v in sorted(wanted)) or "no versions"
            until(
                all_registered,
                timeout=self.backend.startup_timeout,
                what=f"{', '.join(names)} to register holding {versions}",
                interval=WORKER_POLL_INTERVAL,
                watch=watch,
            )
        except (ServiceExited, WaitTimeout) as exc:
            tails = "\n".join(f"--- {n}:\n{_tail(self.backend.logs(n))}" for n in names)
            raise BackendError(f"{exc}\n{tails}") from None
        for entry in found:
            if entry.worker_id is not None:
                self._worker_ids[entry.name] = entry.worker_id

    def teardown(self) -> None:
        if self.admin is not None:
            with contextlib.suppress(Exception):
                self.admin.close()
            self.admin = None

    # -- internals -------------------------------------------------------------------------------
    def _advertise_url(self, name: str) -> str:
        """The URL the gateway lists a worker under: the one it advertised (through a proxy, maybe)."""
        return self.backend.placement(name).reached_by("gateway").rstrip("/")

    def _started(self) -> ClusterSpec:
        if self.spec is None or self.admin is None:
            raise TargetError("the cluster is not started (no 'Given a cluster ...' step ran)")
        return self.spec

    def _admin(self) -> GatewayAdmin:
        if self.admin is None:
            raise TargetError("the cluster is not started")
        return self.admin


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])
