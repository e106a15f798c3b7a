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


@dataclass
class ClusterSpec:
    """What to start. Defaults suit the acceptance features."""

    workers: int = 1
    heartbeat_interval: float = 1.0
    upstream_timeout: float = 5.0
    admin_token: str = "test-admin-token"
    memory_budget: int = 0  # bytes per worker; 0 = unlimited
    db: str = "sqlite"  # "sqlite" or a postgresql:// DSN
    artifact_root: Path | None = None  # host directory with model artifacts (see fixtures.models)
    # (model, version, artifact_uri) registered through the admin API after the gateway is up and
    # before the workers start, so that workers receive them as assignments at registration.
    # The first version registered for a model becomes its `production` alias.
    preload: list[tuple[str, str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceInfo:
    name: str  # "gateway", "worker-1", ...
    kind: str  # "gateway" | "worker"
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
    def add_workers(self, count: int, *, wait: bool = True) -> list[str]:
        """Start ``count`` more workers (concurrently); return their service names."""

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
