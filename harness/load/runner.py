"""Run Locust headless in a subprocess and read its raw per-request samples back.

Locust is never imported here: importing it monkey-patches the interpreter with gevent, which breaks
pytest and asyncio in the test process. ``LoadRun.start`` spawns ``python -m locust -f locustfile.py
--headless ...`` in its own process group; the locustfile appends one JSON line per request to a
file per Locust process, which :meth:`LoadRun.samples` turns into :class:`Observation` records
(``source="load"``) while the load runs and after it stopped.

No Locust process outlives the test: :meth:`LoadRun.stop` stops gracefully (SIGTERM: users finish the
request in flight within ``--stop-timeout``), then kills the process group; an ``atexit`` hook and a
SIGTERM hook do the same for runs nobody stopped, and the locustfile quits by itself when the process
that started it is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from harness import trace
from harness.observations import Observation

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
TASK_NAMES = ("infer", "metadata", "ready", "live")
_LOG_TAIL_LINES = 40
_POLL_S = 0.1


class LoadError(RuntimeError):
    """Locust failed to start, died, or did not produce the samples asked for."""


@dataclass
class LoadProfile:
    users: int
    spawn_rate: float | None = None  # users started per second; None = all users at once
    duration_s: float | None = None  # None = run until stop(); Locust takes whole seconds (rounded up)
    model: str = "demo"
    version: str | None = None  # None = the production alias (no /versions/ in the path)
    rows: int = 1  # batch size per infer request
    task_mix: dict[str, int] = field(default_factory=lambda: {"infer": 1})  # task -> weight
    processes: int = 1  # > 1 uses locust --processes (forked worker processes)
    timeout_s: float = 10.0  # client-side per-request timeout (connect and read)
    think_s: float = 0.0  # each user's pause between requests; 0 = back to back (a saturation test)

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1:
            problems.append(f"users must be >= 1 (got {self.users})")
        if self.spawn_rate is not None and self.spawn_rate <= 0:
            problems.append(f"spawn_rate must be > 0 (got {self.spawn_rate})")
        if self.duration_s is not None and self.duration_s <= 0:
            problems.append(f"duration_s must be > 0 (got {self.duration_s})")
        if self.rows < 1:
            problems.append(f"rows must be >= 1 (got {self.rows})")
        if self.processes < 1:
            problems.append(f"processes must be >= 1 (got {self.processes})")
        if self.timeout_s <= 0:
            problems.append(f"timeout_s must be > 0 (got {self.timeout_s})")
        if self.think_s < 0:
            problems.append(f"think_s must be >= 0 (got {self.think_s})")
        unknown = sorted(set(self.task_mix) - set(TASK_NAMES))
        if unknown:
            problems.append(f"unknown task(s) {unknown} in task_mix; known: {list(TASK_NAMES)}")
        if any(w < 0 for w in self.task_mix.values()) or sum(self.task_mix.values()) <= 0:
            problems.append(f"task_mix weights must be >= 0 with a positive total (got {self.task_mix})")
        if problems:
            raise ValueError("invalid load profile: " + "; ".join(problems))


def check_host(host: str) -> str:
    """Only loopback: load must never leave the machine (see docs/architecture.md, network rule)."""
    parts = urlsplit(host)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not port or parts.path not in ("", "/"):
        raise ValueError(f"load may only target http://127.0.0.1:<port> (got {host!r})")
    return host.rstrip("/")


class _SampleReader:
    """Incrementally parses the per-process JSONL files; tolerates a line still being written."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._offsets: dict[Path, int] = {}
        self._items: list[Observation] = []
        self._lock = threading.Lock()

    def read(self) -> list[Observation]:
        with self._lock:
            self._consume()
            return list(self._items)

    def count(self) -> int:
        with self._lock:
            self._consume()
            return len(self._items)

    def _consume(self) -> None:
        for path in sorted(self._directory.glob("samples-*.jsonl")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            complete = chunk.rfind(b"\n") + 1  # only whole lines; the rest is read next time
            for line in chunk[:complete].splitlines():
                if line.strip():
                    self._items.append(_observation(json.loads(line)))
            self._offsets[path] = offset + complete


def _observation(record: dict) -> Observation:
    return Observation(
        started=float(record["t"]),
        latency_s=float(record["lat"]),
        status=int(record["status"]),
        model_version=record.get("ver"),
        error=record.get("err"),
        source="load",
        request_id=record.get("id"),
        target=record.get("target", ""),
        provider=record.get("prov"),
    )


class LoadRun:
    """A running (or finished) Locust process and the samples it wrote."""

    def __init__(
        self, process: subprocess.Popen, profile: LoadProfile, host: str, rundir: Path, command: list[str]
    ) -> None:
        self.process = process
        self.profile = profile
        self.host = host
        self.rundir = rundir
        self.command = command
        self.log_path = rundir / "locust.log"
        self._reader = _SampleReader(rundir / "samples")
        self._stopped = False
        self._stop_lock = threading.Lock()

    @classmethod
    def start(cls, host: str, profile: LoadProfile, workdir: Path) -> LoadRun:
        """Spawn Locust against ``host`` (http://127.0.0.1:PORT) and return at once."""
        host = check_host(host)
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        rundir = Path(tempfile.mkdtemp(prefix="load-", dir=workdir))
        (rundir / "samples").mkdir()
        command = _locust_command(host, profile)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}  # no stray Locust options
        env.update(_locust_env(profile, rundir / "samples"))
        trace.touch("load", f"start {profile.users} users against {host}")
        with (rundir / "locust.log").open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=rundir,  # keeps Locust from picking up a locust.conf / pyproject.toml of the caller
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() can kill the forked workers too
            )
        run = cls(process, profile, host, rundir, command)
        _register(run)
        return run

    # -- state --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return "(no locust log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def samples(self) -> list[Observation]:
        """Every sample written so far, ordered by start time."""
        trace.touch("load", "samples")
        return sorted(self._reader.read(), key=lambda o: o.started)

    # -- control ------------------------------------------------------------------------------
    def wait_for_samples(self, count: int = 1, timeout: float = 30.0) -> None:
        """Block until at least ``count`` samples exist; raise :class:`LoadError` if Locust died first."""
        trace.touch("load", f"wait for {count} samples")
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.running
            have = self._reader.count()
            if have >= count:
                return
            if exited:
                raise LoadError(
                    f"locust exited (code {self.returncode}) after {have} of the {count} samples waited for;"
                    f" command: {' '.join(self.command)}\n--- locust log tail ---\n{self.log_tail}"
                )
            if time.monotonic() >= deadline:
                raise LoadError(
                    f"only {have} of {count} samples after {timeout:.1f} s (locust still running)"
                    f"\n--- locust log tail ---\n{self.log_tail}"
                )
            time.sleep(_POLL_S)

    def wait(self, timeout: float) -> int:
        """Wait for a duration-limited run to end by itself; return Locust's exit code."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise LoadError(f"locust still running after {timeout:.1f} s\n{self.log_tail}") from None

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM; in-flight requests finish), then kill the group. Idempotent."""
        with self._stop_lock:
            if self._stopped:
                return
            trace.touch("load", "stop")
            if self.running:
                _signal(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _killpg(self.process.pid)
                    self.process.wait(5)
            _killpg(self.process.pid)  # forked --processes workers that outlived the master, if any
            self._stopped = True
            _unregister(self)

    def kill(self) -> None:
        """Immediate SIGKILL of the whole process group (used by the exit hooks)."""
        _killpg(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._stopped = True
        _unregister(self)

    def __enter__(self) -> LoadRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _locust_command(host: str, profile: LoadProfile) -> list[str]:
    spawn_rate = profile.spawn_rate if profile.spawn_rate is not None else profile.users
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", host,
        "--users", str(profile.users),
        "--spawn-rate", f"{spawn_rate:g}",
        "--stop-timeout", f"{math.ceil(profile.timeout_s) + 1}",  # let every request in flight finish
        "--exit-code-on-error", "0",  # failed requests are data (in the samples), not a Locust failure
        "--only-summary",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if profile.duration_s is not None:
        command += ["--run-time", f"{math.ceil(profile.duration_s)}s"]
    if profile.processes > 1:
        command += ["--processes", str(profile.processes)]
    return command


def _locust_env(profile: LoadProfile, samples_dir: Path) -> dict[str, str]:
    return {
        "SBDD_LOAD_SAMPLES_DIR": str(samples_dir),
        "SBDD_LOAD_MODEL": profile.model,
        "SBDD_LOAD_VERSION": profile.version or "",
        "SBDD_LOAD_ROWS": str(profile.rows),
        "SBDD_LOAD_TIMEOUT_S": repr(float(profile.timeout_s)),
        "SBDD_LOAD_THINK_S": repr(float(profile.think_s)),
        "SBDD_LOAD_TASK_MIX": json.dumps(profile.task_mix),
        "SBDD_LOAD_RUN_ID": f"load-{uuid.uuid4().hex[:8]}",
        "SBDD_LOAD_PARENT_PID": str(os.getpid()),
        "PYTHONUNBUFFERED": "1",
    }


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# -- last-resort cleanup: runs nobody stopped die with the test process ---------------------------
_live: set[LoadRun] = set()
_owner_pid = os.getpid()  # a forked copy of the test process must not kill the original's load
_live_lock = threading.Lock()
_hooks_installed = False


def _register(run: LoadRun) -> None:
    global _hooks_installed
    with _live_lock:
        _live.add(run)
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_kill_all)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(run: LoadRun) -> None:
    with _live_lock:
        _live.discard(run)


def _kill_all() -> None:
    if os.getpid() != _owner_pid:
        return
    with _live_lock:
        runs = list(_live)
    for run in runs:
        run.kill()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _kill_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
