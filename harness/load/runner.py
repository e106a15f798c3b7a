"""Run Locust headless in a subprocess and read its raw per-request samples back.

Locust is never imported here: importing it monkey-patches the interpreter with gevent, which breaks
pytest and asyncio in the test process. ``LoadRun.start`` spawns ``python -m locust -f locustfile.py
--headless ...`` in its own process group; the locustfile appends one JSON line per request to a
file per Locust process, which :meth:`LoadRun.samples` turns into :class:`Observation` records
(``source="load"``) while the load runs and after it stopped.

With ``LoadProfile.load_workers = N`` the process is a Locust master and N ``locust --worker`` s
connect to it, started by a :class:`~harness.load.workers.WorkerSite`: processes on 127.0.0.1, or
containers on a scenario's Docker network; each worker writes its own samples file in the same
directory, so the samples come back exactly as from one process.

No Locust process outlives the test: :meth:`LoadRun.stop` stops gracefully (SIGTERM: users finish the
request in flight within ``--stop-timeout``), then kills the process group; :mod:`harness.cleanup` and a
SIGTERM hook do the same for runs nobody stopped, and the locustfile quits by itself when the process
that started it is gone.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness import cleanup, trace
from harness.drivers.v2 import request_inputs
from harness.load.endpoints import Endpoint, check_endpoints, v2_endpoints, write_endpoints
from harness.load.schedule import Schedule
from harness.load.workers import LOCUSTFILE, ProcessSite, Worker, WorkerSite, tail
from harness.observations import Observation
from harness.waiting import poll

TASK_NAMES = ("infer", "metadata", "ready", "live")
_POLL_S = 0.1


class LoadError(RuntimeError):
    """Locust failed to start, died, or did not produce the samples asked for."""


@dataclass
class LoadProfile:
    users: int  # with a ``schedule``: its peak (informational)
    spawn_rate: float | None = None  # users started per second; None = all users at once
    duration_s: float | None = None  # None = run until stop(); Locust takes whole seconds (rounded up)
    model: str = "demo"
    version: str | None = None  # None = the production alias (no /versions/ in the path)
    rows: int = 1  # batch size per infer request
    task_mix: dict[str, int] = field(default_factory=lambda: {"infer": 1})  # task -> weight
    processes: int = 1  # > 1 uses locust --processes (forked worker processes)
    timeout_s: float = 10.0  # client-side per-request timeout (connect and read)
    think_s: float = 0.0  # each user's pause between requests; 0 = back to back (a saturation test)
    # What to call; None = the V2 calls of ``task_mix`` on ``model``/``version`` with ``body`` (the
    # model's own request, from its target's ModelSpec). Given, model/version/rows/task_mix are not used.
    endpoints: tuple[Endpoint, ...] | None = None
    body: dict | None = None  # the infer request (the model's inputs); its id is replaced per request
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request (an external target's)
    schedule: Schedule | None = None  # user count over time; given, users/spawn_rate/duration_s are not used
    user_rate: float | None = None  # requests per second per user (paced); None = think_s between requests
    load_workers: int = 0  # > 0: Locust master + this many worker processes (master/worker mode)
    name: str = ""  # the profile's name, for reports

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
        if self.load_workers < 0:
            problems.append(f"load_workers must be >= 0 (got {self.load_workers})")
        if self.load_workers and self.processes > 1:
            problems.append("use processes (forked) or load_workers (master/worker), not both")
        if self.timeout_s <= 0:
            problems.append(f"timeout_s must be > 0 (got {self.timeout_s})")
        if self.think_s < 0:
            problems.append(f"think_s must be >= 0 (got {self.think_s})")
        if self.user_rate is not None and self.user_rate <= 0:
            problems.append(f"user_rate must be > 0 (got {self.user_rate})")
        unknown = sorted(set(self.task_mix) - set(TASK_NAMES))
        if unknown:
            problems.append(f"unknown task(s) {unknown} in task_mix; known: {list(TASK_NAMES)}")
        if any(w < 0 for w in self.task_mix.values()) or sum(self.task_mix.values()) <= 0:
            problems.append(f"task_mix weights must be >= 0 with a positive total (got {self.task_mix})")
        if self.endpoints is not None:
            try:
                self.endpoints = check_endpoints(self.endpoints)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("invalid load profile: " + "; ".join(problems))

    def calls(self) -> tuple[Endpoint, ...]:
        """The endpoints the locustfile is given."""
        if self.endpoints is not None:
            return self.endpoints
        return v2_endpoints(self.model, self.version, self.task_mix, self.infer_body())

    def infer_body(self) -> dict:
        """The infer request: ``body``, else a ``[rows, 4]`` FP32 batch named ``input`` (the reference
        cluster's models), for callers that give no body of their model."""
        if self.body is not None:
            return self.body
        data = [round(0.1 * (i % 40) - 2.0, 3) for i in range(self.rows * 4)]
        return {"inputs": [{"name": "input", "shape": [self.rows, 4], "datatype": "FP32", "data": data}]}


def check_host(host: str, *, loopback_only: bool = False) -> str:
    """A base URL for load: http(s)://host[:port][/prefix]; ``loopback_only`` for our own benchmarks.

    The project's own tests and benchmarks target 127.0.0.1 only (see docs/architecture.md, network
    rule); a user may point the harness at a deployment of their own.
    """
    parts = urlsplit(host)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.query:
        raise ValueError(f"load needs an http(s)://host[:port] base URL (got {host!r})")
    if loopback_only and (parts.scheme != "http" or parts.hostname != "127.0.0.1" or not port):
        raise ValueError(f"load may only target http://127.0.0.1:<port> here (got {host!r})")
    return host.rstrip("/")


class _SampleReader:
    """Incrementally parses the per-process JSONL files; tolerates a line still being written."""

    def __init__(self, directory: Path, inputs: dict[str, dict[str, list]] | None = None) -> None:
        self._directory = directory
        self._inputs = inputs or {}  # "POST /v2/.../infer" -> the input tensors that endpoint sends
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
                    self._items.append(_observation(json.loads(line), self._inputs))
            self._offsets[path] = offset + complete


def _observation(record: dict, inputs: dict[str, dict[str, list]] | None = None) -> Observation:
    target = record.get("target", "")
    return Observation(
        started=float(record["t"]),
        latency_s=float(record["lat"]),
        status=int(record["status"]),
        model_version=record.get("ver"),
        error=record.get("err"),
        source="load",
        request_id=record.get("id"),
        target=target,
        outputs=record.get("out"),
        provider=record.get("prov"),
        inputs=(inputs or {}).get(target),
    )


def endpoint_inputs(endpoints: tuple[Endpoint, ...]) -> dict[str, dict[str, list]]:
    """The input tensors (name -> flat data) each V2 infer endpoint sends, by the sample's ``target``
    (``"POST /v2/..."``): every answer's outputs can then be judged against what its version computes."""
    return {
        f"{e.method} {e.path}": request_inputs(e.body)
        for e in endpoints
        if isinstance(e.body, dict) and e.body.get("inputs")
    }


class LoadRun:
    """A running (or finished) Locust process and the samples it wrote."""

    def __init__(
        self,
        process: subprocess.Popen,
        profile: LoadProfile,
        host: str,
        rundir: Path,
        command: list[str],
        workers: list[Worker] | None = None,
    ) -> None:
        self.process = process  # the Locust master (or the only process)
        self.workers = workers if workers is not None else []  # master/worker mode (processes or containers)
        self.profile = profile
        self.host = host
        self.rundir = rundir
        self.command = command
        self.log_path = rundir / "locust.log"
        self.started_at = time.time()
        self._reader = _SampleReader(rundir / "samples", endpoint_inputs(profile.calls()))
        self._stopped = False
        self._stop_lock = threading.Lock()

    @classmethod
    def start(cls, host: str, profile: LoadProfile, workdir: Path, site: WorkerSite | None = None) -> LoadRun:
        """Spawn Locust against ``host`` (an http(s) base URL) and return at once; the load workers of
        master/worker mode start on ``site`` (default: processes on this machine)."""
        host = check_host(host)
        site = site or ProcessSite()
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        rundir = Path(tempfile.mkdtemp(prefix="load-", dir=workdir))
        (rundir / "samples").mkdir()
        endpoints = write_endpoints(profile.calls(), rundir / "endpoints.json")
        master_port = None
        if profile.load_workers:
            site.prepare()
            master_port = _free_port()
        command = _locust_command(site.target_url(host), profile, master_port, site.master_bind_host)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}  # no stray Locust options
        env.update(_locust_env(profile, rundir / "samples", endpoints))
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
        workers: list[Worker] = []
        run = cls(process, profile, host, rundir, command, workers)
        _register(run)  # from here on, an exit hook ends the master and every worker started
        try:
            for index in range(profile.load_workers):
                assert master_port is not None
                workers.append(site.start(index, master_port, env, rundir))
        except BaseException:
            run.kill()
            raise
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
        """The last lines of Locust's log (and of each load worker's, in master/worker mode)."""
        tails = [tail(self.log_path)]
        for index in range(len(self.workers)):
            tails.append(f"--- load worker {index} ---\n" + self.workers[index].log_tail())
        return "\n".join(tails)

    def samples(self) -> list[Observation]:
        """Every sample written so far, ordered by start time."""
        trace.touch("load", "samples")
        return sorted(self._reader.read(), key=lambda o: o.started)

    # -- control ------------------------------------------------------------------------------
    def wait_for_samples(self, count: int = 1, timeout: float = 30.0) -> None:
        """Block until at least ``count`` samples exist; raise :class:`LoadError` if Locust died first."""
        trace.touch("load", f"wait for {count} samples")

        def progress() -> tuple[bool, int]:  # exited first: samples written just before the exit still count
            exited = not self.running
            return exited, self._reader.count()

        exited, have = poll(
            progress, lambda seen: seen[0] or seen[1] >= count, timeout=timeout, interval=_POLL_S
        )
        if have >= count:
            return
        if exited:
            raise LoadError(
                f"locust exited (code {self.returncode}) after {have} of the {count} samples waited for;"
                f" command: {' '.join(self.command)}\n--- locust log tail ---\n{self.log_tail}"
            )
        raise LoadError(
            f"only {have} of {count} samples after {timeout:.1f} s (locust still running)"
            f"\n--- locust log tail ---\n{self.log_tail}"
        )

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
            for worker in self.workers:  # the master told them to quit: let them finish their requests
                worker.wait(10)
            self._kill_groups()  # forked --processes workers or load workers that outlived the master
            self._stopped = True
            _unregister(self)

    def _kill_groups(self) -> None:
        _killpg(self.process.pid)
        for worker in self.workers:
            worker.kill()

    def kill(self) -> None:
        """Immediate SIGKILL of the whole process group (used by the exit hooks)."""
        self._kill_groups()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._stopped = True
        _unregister(self)

    def __enter__(self) -> LoadRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _locust_command(
    host: str, profile: LoadProfile, master_port: int | None = None, bind_host: str = "127.0.0.1"
) -> list[str]:
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", host,
        "--stop-timeout", f"{math.ceil(profile.timeout_s) + 1}",  # let every request in flight finish
        "--exit-code-on-error", "0",  # failed requests are data (in the samples), not a Locust failure
        "--only-summary",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if profile.schedule is None:  # with a schedule the locustfile's LoadTestShape sets users and the end
        spawn_rate = profile.spawn_rate if profile.spawn_rate is not None else profile.users
        command += ["--users", str(profile.users), "--spawn-rate", f"{spawn_rate:g}"]
        if profile.duration_s is not None:
            command += ["--run-time", f"{math.ceil(profile.duration_s)}s"]
    if profile.processes > 1:
        command += ["--processes", str(profile.processes)]
    if master_port is not None:
        command += [
            "--master", "--master-bind-host", bind_host, "--master-bind-port", str(master_port),
            "--expect-workers", str(profile.load_workers), "--expect-workers-max-wait", "60",
        ]  # fmt: skip
    return command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _locust_env(profile: LoadProfile, samples_dir: Path, endpoints: Path) -> dict[str, str]:
    return {
        "SERVINGBDD_LOAD_SAMPLES_DIR": str(samples_dir),
        "SERVINGBDD_LOAD_ENDPOINTS": str(endpoints),
        "SERVINGBDD_LOAD_SCHEDULE": json.dumps(profile.schedule.to_json() if profile.schedule else None),
        "SERVINGBDD_LOAD_TIMEOUT_S": repr(float(profile.timeout_s)),
        "SERVINGBDD_LOAD_THINK_S": repr(float(profile.think_s)),
        "SERVINGBDD_LOAD_USER_RATE": repr(float(profile.user_rate or 0.0)),
        "SERVINGBDD_LOAD_RUN_ID": f"load-{uuid.uuid4().hex[:8]}",
        "SERVINGBDD_LOAD_HEADERS": json.dumps(profile.headers),
        "SERVINGBDD_LOAD_PARENT_PID": str(os.getpid()),
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
    cleanup.register(_kill_all)


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
