"""Command lines of the cluster's services, shared by ``sut up`` and the harness's local backend.

Keeping the argv in one place means the CLI, the harness and the Dockerfiles cannot disagree
about how a service is started. No token ever goes on these command lines (``ps`` shows them to every
user): the admin token travels in ``SUT_ADMIN_TOKEN`` (see :func:`service_env`), the join token in a
file named by ``--join-token-file`` (or ``SUT_JOIN_TOKEN``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def gateway_command(
    *,
    port: int,
    data_dir: Path,
    artifact_root: Path,
    join_token_file: Path | None = None,
    host: str = "127.0.0.1",
    db: str | None = None,
    heartbeat_interval: float = 1.0,
    expiry_misses: int = 3,
    upstream_timeout: float = 5.0,
    join_token_overlap: float | None = None,
    failover_audit_limit: int | None = None,
    clock_offset_s: float = 0.0,
    python: str = sys.executable,
) -> list[str]:
    argv = [
        python, "-m", "sut.gateway",
        "--host", host, "--port", str(port),
        "--data-dir", str(data_dir),
        "--artifact-root", str(artifact_root),
        "--heartbeat-interval", str(heartbeat_interval),
        "--expiry-misses", str(expiry_misses),
        "--upstream-timeout", str(upstream_timeout),
    ]  # fmt: skip
    if join_token_file is not None:  # else the gateway reads SUT_JOIN_TOKEN
        argv += ["--join-token-file", str(join_token_file)]
    if join_token_overlap is not None:
        argv += ["--join-token-overlap", str(join_token_overlap)]
    if failover_audit_limit is not None:
        argv += ["--failover-audit-limit", str(failover_audit_limit)]
    if db:
        argv += ["--db", db]
    if clock_offset_s:  # the time rules' clock (sut.gateway.clock); else SUT_CLOCK_OFFSET_S, else none
        argv += ["--clock-offset", repr(float(clock_offset_s))]
    return argv


def worker_command(
    *,
    port: int,
    gateway_url: str,
    artifact_root: Path,
    name: str,
    host: str = "127.0.0.1",
    advertise_url: str | None = None,
    memory_budget: int = 0,
    grace_period: float = 10.0,
    join_token_file: Path | None = None,
    pool: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    argv = [
        python, "-m", "sut.worker",
        "--host", host, "--port", str(port),
        "--gateway", gateway_url,
        "--artifact-root", str(artifact_root),
        "--memory-budget", str(memory_budget),
        "--grace-period", str(grace_period),
        "--name", name,
    ]  # fmt: skip
    if advertise_url:
        argv += ["--advertise-url", advertise_url]
    if join_token_file is not None:  # else the worker reads SUT_JOIN_TOKEN
        argv += ["--join-token-file", str(join_token_file)]
    if pool is not None:
        argv += ["--pool", pool]
    return argv


def trainer_command(
    *,
    port: int,
    gateway_url: str,
    artifact_root: Path,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    interval: float = 2.0,
    window: int = 400,
    min_window: int = 200,
    psi: float = 0.25,
    ks_p: float = 0.01,
    holdout: float = 0.25,
    python: str = sys.executable,
) -> list[str]:
    argv = [
        python, "-m", "sut.trainer",
        "--host", host, "--port", str(port),
        "--gateway", gateway_url,
        "--artifact-root", str(artifact_root),
        "--interval", str(interval),
        "--window", str(window),
        "--min-window", str(min_window),
        "--psi", str(psi),
        "--ks-p", str(ks_p),
        "--holdout", str(holdout),
    ]  # fmt: skip
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    return argv


def service_env(*, admin_token: str | None = None, join_token: str | None = None) -> dict[str, str]:
    """The environment variables that carry tokens to a service (never its command line)."""
    env = {}
    if admin_token is not None:
        env["SUT_ADMIN_TOKEN"] = admin_token
    if join_token is not None:
        env["SUT_JOIN_TOKEN"] = join_token
    return env


# --- running the services as detached processes (used by ``sut up``/``sut down`` and the tests) ---


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on ``host``; free unless someone grabs it in between."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def spawn_detached(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own session (so its pid is its process-group id and it outlives the
    caller and its terminal), with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def process_running(pid: int, marker: str | None = None) -> bool:
    """True while ``pid`` exists and is not a zombie; with ``marker``, only if its command line
    contains it (guards against killing an unrelated process that reused the pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        return False
    return marker is None or marker in cmdline


def stop_process_group(pid: int, *, grace: float = 10.0, marker: str | None = None) -> str:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``grace`` seconds.

    Returns what happened: ``"not running"``, ``"stopped"`` (exited on SIGTERM) or ``"killed"``.
    Works for processes that are not our children (``sut down`` runs in a new CLI process).
    """
    if not process_running(pid, marker):
        return "not running"
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not process_running(pid):
            _signal_group(pid, signal.SIGKILL)  # leftovers of the group, if any
            return "stopped"
        time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)
    for _ in range(100):
        _reap(pid)
        if not process_running(pid):
            break
        time.sleep(0.05)
    return "killed"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status when ``pid`` happens to be our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
