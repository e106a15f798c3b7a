"""The cluster backend interface.

A backend starts the reference cluster (one gateway, N workers) somewhere the test process can
reach on 127.0.0.1, and performs lifecycle actions on its services. Steps never call a backend
directly: they go through drivers on the :class:`harness.world.World`, which also records what was
touched for the stub report's run-time view.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrainerSpec:
    """The drift monitor / retrainer service (issue 7); flags of ``python -m sut.trainer``."""

    interval: float = 0.5  # seconds between drift checks
    window: int = 600  # input rows in the recent window
    min_window: int = 300  # smaller windows are not judged
    psi: float = 0.25
    ks_p: float = 0.01
    holdout: float = 0.25


@dataclass
class ClusterSpec:
    """What to start. Defaults suit the acceptance features."""

    workers: int = 1
    heartbeat_interval: float = 1.0
    upstream_timeout: float = 5.0
    admin_token: str = "test-admin-token"
    # the workers' credential (a file each service reads, see harness.backends.secrets); rewriting it
    # rotates it, and the gateway accepts the previous one for ``join_token_overlap`` seconds more
    join_token: str = "test-join-token"
    join_token_overlap: float = 30.0
    memory_budget: int = 0  # bytes per worker; 0 = unlimited
    db: str = "sqlite"  # "sqlite" or a postgresql:// DSN
    artifact_root: Path | None = None  # host directory with model artifacts (see fixtures.models)
    # (model, version, artifact_uri) registered through the admin API after the gateway is up and
    # before the workers start, so that workers receive them as assignments at registration.
    # The first version registered for a model becomes its `production` alias.
    preload: list[tuple[str, str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Put an in-path fault proxy on every gateway<->worker link (partitions, latency): in the test
    # process on local, a proxy container per link on docker. Off by default: on local the proxy
    # shares the test process with the load generator and would skew performance scenarios.
    fault_links: bool = False
    # a trainer service (drift monitor + automatic retraining), started after the workers; None = none
    trainer: TrainerSpec | None = None


@dataclass
class ServiceInfo:
    name: str  # "gateway", "worker-1", ...
    kind: str  # "gateway" | "worker" | "trainer"
    url: str  # reachable from the test process, e.g. http://127.0.0.1:41234
    running: bool
    ident: str  # pid for local, container id for docker


class BackendError(RuntimeError):
    """A backend could not do what was asked; the message says what and why."""


class ClusterBackend(abc.ABC):
    """Start, act on, and tear down one cluster. One instance per scenario."""

    name: str = "abstract"

    @abc.abstractmethod
    def start(self, spec: ClusterSpec) -> None:
        """Start the gateway and ``spec.workers`` workers; return once the gateway is live
        and every worker has registered."""

    @property
    @abc.abstractmethod
    def gateway_url(self) -> str: ...

    @abc.abstractmethod
    def add_workers(self, count: int, *, wait: bool = True, pool: str | None = None) -> list[str]:
        """Start ``count`` more workers (concurrently), in ``pool`` (``--pool``; None: the default
        pool); return their service names."""

    @abc.abstractmethod
    def stop(self, name: str, *, grace: float = 10.0) -> int | None:
        """Graceful stop (SIGTERM / docker stop); return the exit code."""

    @abc.abstractmethod
    def kill(self, name: str) -> int | None:
        """SIGKILL; return the exit code."""

    @abc.abstractmethod
    def restart(self, name: str) -> None:
        """Start a stopped or killed service again under the same name."""

    @abc.abstractmethod
    def pause(self, name: str) -> None: ...

    @abc.abstractmethod
    def resume(self, name: str) -> None: ...

    @abc.abstractmethod
    def services(self) -> list[ServiceInfo]: ...

    @abc.abstractmethod
    def logs(self, name: str) -> str: ...

    @abc.abstractmethod
    def exit_code(self, name: str) -> int | None:
        """None while running."""

    @abc.abstractmethod
    def teardown(self) -> None:
        """Stop and remove everything this backend started. Idempotent; never raises."""

    def service(self, name: str) -> ServiceInfo:
        for info in self.services():
            if info.name == name:
                return info
        raise BackendError(f"no service named {name!r}; known: {[s.name for s in self.services()]}")

    def workers(self) -> list[ServiceInfo]:
        return [s for s in self.services() if s.kind == "worker"]

    # -- memory limits (the kernel's OOM killer, for real) ------------------------------------------
    def limit_memory(self, name: str, limit_bytes: int | None) -> str:
        """Hard memory limit on a service (None lifts it); it also applies after a ``restart``.
        Returns the mechanism: "cgroup-v1", "cgroup-v2", "rlimit" (local) or "docker" (mem_limit)."""
        raise BackendError(f"the {self.name} backend cannot limit memory")

    def oom_killed(self, name: str) -> bool:
        """The kernel killed the service's current process for exceeding its memory limit
        (local: the cgroup counted an OOM kill and the process died of SIGKILL; docker: exit 137 and
        ``State.OOMKilled``)."""
        return False

    # -- network faults between two services ("gateway", "worker-2"); undone by heal / heal_all ------
    def partition(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` both ways; neither service is told."""
        raise BackendError(f"the {self.name} backend cannot partition services")

    def heal(self, a: str, b: str) -> None:
        """Undo every fault (partition, latency) on the link between ``a`` and ``b``."""
        raise BackendError(f"the {self.name} backend cannot heal links")

    def heal_all(self) -> None:
        """Undo every network fault this backend applied (by default it cannot apply any)."""
        return None

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        """Make each exchange on the connections ``a`` opens to ``b`` ``latency_s`` slower (0 removes it)."""
        raise BackendError(f"the {self.name} backend cannot add latency")

    # -- credentials ---------------------------------------------------------------------------------
    def start_stranger(self, join_token: str | None) -> str:
        """Start a real worker process that presents ``join_token`` (None: no token at all) instead of
        the cluster's, and tries to register with the gateway; nothing waits for it to be accepted.
        Its service kind is "stranger" (not among ``workers()``); returns its name."""
        raise BackendError(f"the {self.name} backend cannot start a stranger's worker")

    def rotate_join_token(self, token: str) -> None:
        """Rewrite the cluster's join token file: the gateway and the workers re-read it, no restart."""
        raise BackendError(f"the {self.name} backend cannot rotate the join token")

    def command_lines(self, name: str) -> list[str]:
        """The command lines of the service's processes, as ``ps`` shows them to any user of the machine
        (local: the process's /proc/<pid>/cmdline; docker: ``docker top``)."""
        raise BackendError(f"the {self.name} backend cannot show command lines")

    # -- files a service keeps on disk (the gateway's catalog database), for file faults -------------
    def data_file(self, name: str, relative: str) -> Path:
        """The host path of ``relative`` inside service ``name``'s data directory (gateway: the catalog
        database ``catalog.db`` and ``backups/``), where the test process can damage it in place."""
        raise BackendError(f"the {self.name} backend cannot reach the data files of {name}")
