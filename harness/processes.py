"""Supervision of the subprocesses the harness starts (services, tools).

Every child runs in its own session (so its pid is also its process-group id, and a Ctrl-C in the
terminal does not reach it directly) with stdout and stderr appended to a log file. A process-wide
registry remembers the live children and kills their whole groups

* at interpreter exit and on SIGINT / SIGTERM / SIGHUP (through :mod:`harness.cleanup`, before the
  handler that was installed before ours, so that Ctrl-C still raises ``KeyboardInterrupt`` in pytest and
  pytest then runs its teardown),

so that no service outlives a run, even an interrupted one. A run that is SIGKILLed runs no handler:
each spawned group is also written to a pidfile of the run (``$TMPDIR/servingbdd-services/``), and the
next run's first spawn kills the groups of runs whose test process is gone (:func:`sweep_orphans`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness import cleanup, waiting

_registry: dict[int, ManagedProcess] = {}
# Re-entrant: a signal handler may run while the main thread holds the lock.
_registry_lock = threading.RLock()
_owner_pid = os.getpid()  # a forked child must not kill its parent's services
KILL_WAIT_S = 30.0


_handed_out: set[int] = set()  # ports given by free_port: a service may not have bound its port yet


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel pick).

    Never the same port twice in one process: the kernel may offer a just-released port again before
    the service it was meant for has bound it.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        with _registry_lock:
            if port not in _handed_out:
                if len(_handed_out) > 5000:  # long runs: old services have long bound theirs
                    _handed_out.clear()
                _handed_out.add(port)
                return port
    raise RuntimeError("no fresh free port after 100 tries")


class ManagedProcess:
    """One child process leading its own process group, with its log file."""

    def __init__(self, name: str, argv: Sequence[str], popen: subprocess.Popen, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.popen = popen
        self.log_path = log_path
        self.paused = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the whole group; False if nothing was there to receive it."""
        try:
            os.killpg(self.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def pause(self) -> None:
        """SIGSTOP the group; returns once the kernel shows the leader stopped (signals are async)."""
        self.signal_group(signal.SIGSTOP)
        self.paused = True
        _await_state(self.pid, lambda state: state in ("T", "Z", ""))

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)
        self.paused = False
        _await_state(self.pid, lambda state: state != "T")

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code, or None if still running after ``timeout``."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, grace: float) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; return the exit code."""
        if self.paused:  # a stopped process cannot act on SIGTERM
            self.resume()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            code = self.wait(grace)
            if code is not None:
                self.signal_group(signal.SIGKILL)  # stragglers of the group, if any
                _forget(self)
                return code
        return self.kill()

    def kill(self) -> int:
        """SIGKILL the whole group and reap the leader; return its exit code (-9 if it was running)."""
        if self.paused:
            self.signal_group(signal.SIGCONT)
            self.paused = False
        self.signal_group(signal.SIGKILL)
        code = self.popen.wait(KILL_WAIT_S)  # SIGKILL cannot be ignored; a bound all the same
        _forget(self)
        return code

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} rc={self.popen.returncode}>"


def process_state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` (R, S, T = stopped, Z = zombie); "" if gone or unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _await_state(pid: int, reached: Callable[[str], bool], timeout: float = 2.0) -> None:
    if not Path("/proc/self/stat").exists():  # no procfs: nothing to wait on
        return
    waiting.poll(lambda: process_state(pid), reached, timeout=timeout, interval=0.002)


PIDFILE_DIR = Path(tempfile.gettempdir()) / "servingbdd-services"
_swept = False


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a reused pid from the original."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pidfile() -> Path:
    return PIDFILE_DIR / f"{_owner_pid}-{_start_time(_owner_pid)}.pids"


def _record_pid(pid: int) -> None:
    PIDFILE_DIR.mkdir(parents=True, exist_ok=True)
    with _pidfile().open("a") as fh:
        fh.write(f"{pid} {_start_time(pid)}\n")


def sweep_orphans() -> int:
    """Kill the process groups that runs which died without cleaning up (SIGKILL) left behind; return
    how many were killed. A group counts only if its leader still has the start time recorded for it."""
    killed = 0
    for path in PIDFILE_DIR.glob("*.pids") if PIDFILE_DIR.is_dir() else []:
        owner, _, started = path.stem.partition("-")
        if owner.isdigit() and _start_time(int(owner)) == started:
            continue  # that run is still alive
        for line in path.read_text().splitlines():
            pid, _, pid_started = line.partition(" ")
            if pid.isdigit() and _start_time(int(pid)) == pid_started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(pid), signal.SIGKILL)
                    killed += 1
        path.unlink(missing_ok=True)
    return killed


def group_rss(pgid: int) -> int:
    """Resident memory (bytes) of every process in the process group ``pgid``, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # field 5: the process group
            total += int(fields[21]) * page  # field 24: rss in pages
    return total


def group_command_lines(pgid: int) -> list[str]:
    """The command line of every process in the process group ``pgid``, as ``ps`` shows it."""
    lines = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            raw = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return lines


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start ``argv`` in a new session, stdout+stderr appended to ``log_path``; register it for cleanup."""
    global _swept
    if not _swept:
        _swept = True
        sweep_orphans()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    proc = ManagedProcess(name, argv, popen, log_path)
    _record_pid(proc.pid)
    with _registry_lock:
        _registry[proc.pid] = proc
    return proc


def live_processes() -> list[ManagedProcess]:
    """The registered children not yet reaped."""
    with _registry_lock:
        return list(_registry.values())


def _forget(proc: ManagedProcess) -> None:
    with _registry_lock:
        _registry.pop(proc.pid, None)


def kill_all(*, reap: bool = True) -> int:
    """SIGKILL every registered group (resuming paused ones first); return how many were signalled.

    ``reap=False`` only sends the signals: used from signal handlers, where waiting could block on a
    lock held by the interrupted frame.
    """
    if os.getpid() != _owner_pid:
        return 0
    procs = live_processes()
    for proc in procs:
        proc.signal_group(signal.SIGCONT)
        proc.signal_group(signal.SIGKILL)
    if reap:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.popen.wait(5.0)
            _forget(proc)
    return len(procs)


def _exit() -> None:
    kill_all()
    if os.getpid() == _owner_pid:
        _pidfile().unlink(missing_ok=True)


cleanup.register(_exit, on_signal=lambda: kill_all(reap=False))
