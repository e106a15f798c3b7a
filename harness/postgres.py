"""A throwaway PostgreSQL server the harness starts, kills (SIGKILL) and restarts for a scenario.

``initdb``, then ``postgres`` itself as our own child (:func:`harness.processes.spawn`: killed at exit even
on Ctrl-C) on a free port of 127.0.0.1, in a fresh directory outside the (root-private) pytest tmp dir,
run as the ``postgres`` user when the harness runs as root (PostgreSQL refuses root).
:meth:`PostgresServer.kill` SIGKILLs the postmaster and every backend it forked, as a crash would;
:meth:`PostgresServer.start` then brings it back on the same port with the same data (crash recovery).
:meth:`PostgresServer.close` always stops it and removes its directory.

Server binaries: ``$SERVINGBDD_PG_BIN``, else the directory of ``pg_ctl`` on PATH, else
``/usr/lib/postgresql/*/bin``; missing binaries are an error that says how to install them
(``apt-get install -y postgresql``), never a skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from harness import waiting
from harness.processes import ManagedProcess, free_port, spawn

PG_USER = "postgres"
PG_BIN_ENV = "SERVINGBDD_PG_BIN"  # a directory holding initdb and pg_ctl
INSTALL_HINT = f"install the server binaries (e.g. `apt-get install -y postgresql`) or set {PG_BIN_ENV}"


class PostgresError(RuntimeError):
    """The server could not be set up, started or stopped; the message has the reason and log tail."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    candidates: list[Path] = []
    if os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for bin_dir in candidates:
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    raise PostgresError(f"no PostgreSQL server binaries (initdb, pg_ctl) found: {INSTALL_HINT}")


def _as_pg_user() -> list[str]:
    """The prefix that runs a program as ``postgres`` when we are root: ``setpriv`` execs in place (no
    fork), so the server stays our own child, reaped by us and killed by the harness at exit."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--"]


class PostgresServer:
    def __init__(self, bin_dir: Path | None = None, *, host: str = "127.0.0.1") -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.host = host
        self.port = free_port(host)
        self.root: Path | None = None
        self.proc: ManagedProcess | None = None
        self.kills = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@{self.host}:{self.port}/postgres"

    @property
    def host_dsn(self) -> str:
        """How the harness reaches it: the same as :attr:`dsn` (a containerised server differs)."""
        return self.dsn

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "the server was never started"
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "the server was never started"
        return self.root / "server.log"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """initdb (first time only), then start the postmaster as our own child and wait until it
        accepts connections."""
        if self.running():
            raise PostgresError("PostgreSQL is already running")
        if self.root is None:
            self._init()
        argv = [
            *_as_pg_user(),
            self._bin("postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.root),
            "-c", f"listen_addresses={self.host}",
            "-c", "fsync=off",  # a killed process, not a lost machine: the page cache keeps the data
        ]  # fmt: skip
        self.proc = spawn(f"postgres-{self.port}", argv, log_path=self.log_path)
        proc = self.proc

        def ready() -> bool:
            if self._accepts():
                return True
            if not proc.alive():
                raise PostgresError(f"PostgreSQL exited with {proc.returncode}:\n{self.log_tail()}")
            return False

        try:
            waiting.until(ready, timeout=timeout, what="PostgreSQL accepting connections", interval=0.05)
        except waiting.WaitTimeout:
            raise PostgresError(f"PostgreSQL not ready after {timeout:g} s:\n{self.log_tail()}") from None

    def kill(self) -> int:
        """SIGKILL the postmaster and every process it forked (they run in their own sessions), as a
        crash would; return the postmaster's pid."""
        if self.proc is None or not self.proc.alive():
            raise PostgresError("cannot kill PostgreSQL: it is not running")
        pid = self.proc.pid
        children = _children(pid)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        self.proc.kill()
        # until every backend has died (at most 10 s: one that lingers is no error)
        waiting.poll(
            lambda: any(_alive(c) for c in children), lambda alive: not alive, timeout=10.0, interval=0.02
        )
        self.kills += 1
        return pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def close(self) -> None:
        """Stop the server (immediate shutdown: its data is thrown away) and remove its directory.
        Idempotent; never raises."""
        if self.proc is not None and self.proc.alive():
            with contextlib.suppress(Exception):
                self.proc.signal_group(signal.SIGQUIT)  # immediate shutdown: the backends exit too
                if self.proc.wait(10.0) is None:
                    self.kill()
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.kill()  # reaps it and drops it from the exit-time registry (a no-op signal if gone)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return ""

    # -- internals -------------------------------------------------------------------------------
    def _init(self) -> None:
        # not under pytest's tmp dir: that one is private to root, and the server runs as postgres
        root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PG_USER)
                shutil.chown(root, PG_USER)
            except (KeyError, LookupError, OSError) as exc:
                shutil.rmtree(root, ignore_errors=True)
                raise PostgresError(f"cannot run PostgreSQL as the {PG_USER!r} user: {exc}") from None
        self.root = root
        argv = [*_as_pg_user(), self._bin("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", PG_USER]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.strip()[-500:]}")

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.dsn, connect_timeout=2).close()
        except psycopg.Error:
            return False
        return True

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a killed child of another process may linger unreaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):
            out.append(int(stat.parent.name))
    return out
