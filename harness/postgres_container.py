"""A throwaway PostgreSQL server in a container on a scenario's Docker network (the docker backend's
catalog database), behind the same small interface as :class:`harness.postgres.PostgresServer`.

The gateway container reaches it by its network alias (:attr:`PostgresContainer.dsn`,
``postgresql://postgres@postgres:5432/postgres``); the harness on the host through its port published
on 127.0.0.1 only (:attr:`PostgresContainer.host_dsn`). The image (``servingbdd/postgres:15``, built
offline by ``tools/build_postgres_image.py``) runs ``initdb`` on a container's first start and then
``postgres`` as PID 1, so :meth:`kill` (``docker kill``, SIGKILL) is a crash of the whole server and
:meth:`start` of the same container brings the same data back after crash recovery.
:meth:`close` removes the container (its logs saved first); it carries the backend's labels, so the
backend's teardown and :mod:`harness.docker_cleanup`'s sweep remove it too.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from harness import waiting
from harness.postgres import PG_USER, PostgresError

IMAGE = "servingbdd/postgres:15"
ALIAS = "postgres"
PORT = 5432  # inside the container
HOST = "127.0.0.1"
BUILD_HINT = "build it with `python tools/build_postgres_image.py` (as root; offline, about two minutes)"
_UP_STATES = ("running", "paused", "restarting")


class PostgresContainer:
    def __init__(
        self,
        client: Any,
        *,
        network: str,
        labels: dict[str, str],
        name: str,
        image: str = IMAGE,
        alias: str = ALIAS,
        log_dir: Path | None = None,
    ) -> None:
        self.client = client  # docker SDK client
        self.network = network
        self.labels = labels
        self.name = name
        self.image = image
        self.alias = alias
        self.log_dir = log_dir
        self.container: Any = None
        self.host_port: int | None = None  # re-read at every start: docker may pick another one
        self.kills = 0

    @property
    def dsn(self) -> str:
        """For the services on the scenario network (the gateway)."""
        return f"postgresql://{PG_USER}@{self.alias}:{PORT}/postgres"

    @property
    def host_dsn(self) -> str:
        """For the harness on the host, through the port published on 127.0.0.1."""
        if self.host_port is None:
            raise PostgresError("the PostgreSQL container was never started")
        return f"postgresql://{PG_USER}@{HOST}:{self.host_port}/postgres"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> None:
        """Create the container (first time only) or start the killed one again, then wait until the
        server accepts connections from the host."""
        if self.running():
            raise PostgresError("PostgreSQL is already running")
        if self.container is None:
            self.container = self._create()
        try:
            self.container.start()
            self.container.reload()
            self.host_port = int(self.container.ports[f"{PORT}/tcp"][0]["HostPort"])
        except Exception as exc:  # docker API errors: one line, no traceback
            raise PostgresError(f"starting the PostgreSQL container {self.name} failed: {exc}") from None

        def ready() -> bool:
            if self._accepts():
                return True
            status = self._status()
            if status not in _UP_STATES:
                code = self._exit_code()
                raise PostgresError(
                    f"the PostgreSQL container exited ({status}, code {code}):\n{self.log_tail()}"
                )
            return False

        try:
            waiting.until(ready, timeout=timeout, what="PostgreSQL accepting connections", interval=0.1)
        except waiting.WaitTimeout:
            raise PostgresError(f"PostgreSQL not ready after {timeout:g} s:\n{self.log_tail()}") from None

    def kill(self) -> int:
        """``docker kill`` (SIGKILL to the postmaster, PID 1: the kernel kills every backend with it);
        the postmaster's pid on the host."""
        if not self.running():
            raise PostgresError("cannot kill PostgreSQL: it is not running")
        pid = int(self.container.attrs["State"]["Pid"])
        self.container.kill()
        self.container.wait(timeout=30)
        self.container.reload()
        self.kills += 1
        return pid

    def running(self) -> bool:
        return self._status() in _UP_STATES

    def close(self) -> None:
        """Save the logs (``<log_dir>/postgres.log``) and remove the container with its data.
        Idempotent; never raises."""
        if self.container is None:
            return
        if self.log_dir is not None:
            with contextlib.suppress(Exception):
                self.log_dir.mkdir(parents=True, exist_ok=True)
                (self.log_dir / "postgres.log").write_text(self._logs())
        with contextlib.suppress(Exception):
            self.container.remove(force=True, v=True)
        self.container = None

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self._logs().splitlines()[-lines:])

    # -- internals -------------------------------------------------------------------------------
    def _create(self) -> Any:
        import docker.errors

        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise PostgresError(f"no image {self.image} here: {BUILD_HINT}") from None
        endpoint = self.client.api.create_endpoint_config(aliases=[self.alias])
        try:
            return self.client.containers.create(
                self.image,
                # a killed process, not a lost machine: the page cache keeps the data
                command=["-c", "fsync=off"],
                name=self.name,
                labels=self.labels,
                ports={f"{PORT}/tcp": (HOST, None)},  # 127.0.0.1 only, a free port
                network=self.network,
                networking_config={self.network: endpoint},
                detach=True,
            )
        except docker.errors.APIError as exc:
            raise PostgresError(f"creating the PostgreSQL container {self.name} failed: {exc}") from None

    def _status(self) -> str | None:
        if self.container is None:
            return None
        try:
            self.container.reload()
        except Exception:
            return None
        return self.container.status

    def _exit_code(self) -> int | None:
        with contextlib.suppress(Exception):
            return self.container.attrs["State"]["ExitCode"]
        return None

    def _logs(self) -> str:
        if self.container is None:
            return ""
        try:
            return self.container.logs(stdout=True, stderr=True).decode(errors="replace")
        except Exception:
            return ""

    def _accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.host_dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True
