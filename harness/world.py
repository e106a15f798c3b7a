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
from harness.backends.base import ClusterBackend, ClusterSpec, ServiceInfo
from harness.observations import Observations

if TYPE_CHECKING:
    from harness.drivers.gateway import GatewayClient
    from harness.load.runner import LoadRun

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
        self.last_error: str | None = None  # text of the last failed admin/driver answer
        self._gateway: GatewayClient | None = None
        self._undo: list[tuple[str, Callable[[], object]]] = []

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

    def add_workers(self, count: int, *, wait: bool = True) -> list[str]:
        trace.touch("backend", f"add {count} workers")
        return self.backend.add_workers(count, wait=wait)

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
