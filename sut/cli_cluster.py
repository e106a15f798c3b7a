"""``sut up`` and ``sut down``: start a local cluster (a gateway and N workers as detached processes, the
demo model registered) and stop it again."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from sut import cluster_state, launcher
from sut.cli_admin import AdminClient, CliError, model_refs
from sut.cluster_state import ClusterRecord, ProcessRecord
from sut.token_source import new_token, write_token_file

DEMO_MODEL = "demo"
DEMO_VERSIONS = ("1", "2")
HOST = "127.0.0.1"


# --- sut up ----------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"sut: {message}", file=sys.stderr, flush=True)


def _wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    procs: Sequence[tuple[ProcessRecord, subprocess.Popen]],
) -> None:
    """Poll ``check`` until it holds; fail early, naming its log, when a started process dies."""
    deadline = time.monotonic() + timeout
    while True:
        for record, proc in procs:
            code = proc.poll()
            if code is not None:
                raise CliError(
                    f"{record.name} exited with code {code} while {what}: {_last_log_line(record.log)} "
                    f"(log: {record.log})"
                )
        if check():
            return
        if time.monotonic() > deadline:
            logs = Path(procs[0][0].log).parent if procs else "the data dir"
            raise CliError(f"timed out after {timeout:.0f} s {what} (logs in {logs})")
        time.sleep(0.2)


def _last_log_line(log: str) -> str:
    try:
        lines = [line.strip() for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _cluster_ready(admin: AdminClient, workers: int) -> bool:
    """Every worker registered, healthy, and holding the demo model's production version."""
    try:
        status = admin.request("GET", "/admin/status", what="status failed")
    except CliError:
        return False
    production = _production_version(status, DEMO_MODEL)
    if production is None:
        return False
    serving = [
        w
        for w in status.get("workers", [])
        if w.get("healthy") and {"name": DEMO_MODEL, "version": production} in model_refs(w.get("models", []))
    ]
    return len(serving) >= workers


def _production_version(status: dict, model: str) -> str | None:
    for entry in status.get("models", []):
        if entry.get("name") == model:
            version = (entry.get("aliases") or {}).get("production")
            return str(version) if version is not None else None
    return None


def _register_demo(admin: AdminClient, artifact_root: Path) -> None:
    """Build and register the demo versions the catalog does not hold yet. A reused data dir keeps its
    catalog: its artifacts are left as they are, since the catalog holds their sha256. The first
    version registered becomes the ``production`` alias."""
    try:
        known = admin.request("GET", f"/admin/models/{DEMO_MODEL}/versions", what="list versions")
    except CliError:
        known = []  # a new catalog: the model does not exist yet
    have = {str(v.get("version")) for v in known if isinstance(v, dict)}
    missing = tuple(v for v in DEMO_VERSIONS if v not in have)
    if not missing:
        _progress(f"the catalog already holds {DEMO_MODEL} versions {', '.join(DEMO_VERSIONS)}")
        return
    from sut.demo_models import build_demo  # imports numpy and onnx helpers: only `sut up` pays for it

    artifacts = build_demo(artifact_root, versions=missing)
    for version in missing:
        body = {"version": version, "artifact_uri": artifacts[version].artifact_uri}
        admin.request("POST", f"/admin/models/{DEMO_MODEL}/versions", body, what=f"register demo {version}")
        _progress(f"registered {DEMO_MODEL} version {version} ({artifacts[version].artifact_uri})")


def _ensure_production(admin: AdminClient) -> None:
    """Set the production alias to the first version if the gateway did not do it on registration."""
    status = admin.request("GET", "/admin/status", what="status failed")
    if _production_version(status, DEMO_MODEL) is None:
        admin.request("POST", f"/admin/models/{DEMO_MODEL}/swap", {"version": DEMO_VERSIONS[0]}, what="swap")


def cmd_up(args: argparse.Namespace) -> int:
    """Start a gateway and N workers on 127.0.0.1 as detached processes, register the demo model
    (versions 1 and 2, production = 1) and return once every worker serves it."""
    port = args.port or launcher.free_port(HOST)
    name = args.name or f"sut-{port}"
    existing = cluster_state.find_by_name(name)
    if existing and any(launcher.process_running(p.pid, "sut.") for p in existing.processes):
        raise CliError(f"cluster {name} is already running at {existing.gateway_url}; `sut down` it first")
    token = args.token or os.environ.get("SUT_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    data_dir = Path(args.data_dir or cluster_state.state_home() / name).resolve()
    artifact_root = data_dir / "artifacts"
    artifact_root.mkdir(parents=True, exist_ok=True)
    gateway_url = f"http://{HOST}:{port}"
    # The workers' credential: a file the gateway and every worker read (and re-read when it changes).
    join_file = write_token_file(data_dir / "secrets" / "join_token", new_token())
    record = ClusterRecord(
        name, gateway_url, token, str(data_dir), time.time(), join_token_file=str(join_file)
    )
    started: list[tuple[ProcessRecord, subprocess.Popen]] = []

    def start(
        role: str, proc_name: str, url: str, argv: list[str], env: dict[str, str] | None = None
    ) -> None:
        log = data_dir / "logs" / f"{proc_name}.log"
        proc = launcher.spawn_detached(argv, log, env)
        proc_record = ProcessRecord(role, proc_name, proc.pid, url, str(log))
        started.append((proc_record, proc))
        record.processes.append(proc_record)
        cluster_state.add(record)  # saved at once so that `sut down` can clean up a half-started cluster

    admin = AdminClient(gateway_url, token, timeout=args.timeout)
    try:
        _progress(f"starting gateway on {gateway_url} (data dir {data_dir})")
        start(
            "gateway",
            "gateway",
            gateway_url,
            launcher.gateway_command(
                port=port,
                data_dir=data_dir,
                artifact_root=artifact_root,
                join_token_file=join_file,
                join_token_overlap=args.join_token_overlap,
                db=args.db,
            ),
            # not on the command line, where `ps` shows it to everyone
            env=launcher.service_env(admin_token=token),
        )
        _wait_for(
            "waiting for the gateway",
            lambda: _answers(f"{gateway_url}/v2/health/live"),
            args.timeout,
            started,
        )
        _progress("building and registering the demo model")
        _register_demo(admin, artifact_root)
        for i in range(1, args.workers + 1):
            worker_port = launcher.free_port(HOST)
            worker_url = f"http://{HOST}:{worker_port}"
            _progress(f"starting worker-{i} on {worker_url}")
            argv = launcher.worker_command(
                port=worker_port,
                gateway_url=gateway_url,
                artifact_root=artifact_root,
                name=f"worker-{i}",
                join_token_file=join_file,
            )
            start("worker", f"worker-{i}", worker_url, argv)
        _wait_for(
            "waiting for the workers to register",
            lambda: _registered(admin, args.workers),
            args.timeout,
            started,
        )
        _ensure_production(admin)
        _wait_for(
            "waiting for every worker to load the demo model",
            lambda: _cluster_ready(admin, args.workers),
            args.timeout,
            started,
        )
        production = _production_version(
            admin.request("GET", "/admin/status", what="status failed"), DEMO_MODEL
        )
    except BaseException:
        _progress("startup failed; stopping what was started")
        for proc_record, _ in reversed(started):
            launcher.stop_process_group(proc_record.pid, grace=3.0)
        cluster_state.remove(name)
        raise
    finally:
        admin.close()
    _print_up_summary(record, production or "?")
    return 0


def _registered(admin: AdminClient, workers: int) -> bool:
    try:
        status = admin.request("GET", "/admin/status", what="status failed")
    except CliError:
        return False
    return sum(1 for w in status.get("workers", []) if w.get("healthy")) >= workers


def _print_up_summary(record: ClusterRecord, production: str) -> None:
    print(f"cluster   {record.name}")
    print(f"gateway   {record.gateway_url}")
    for proc in record.processes:
        if proc.role == "worker":
            print(f"worker    {proc.url}  ({proc.name}, pid {proc.pid})")
    print(f"model     {DEMO_MODEL} versions {', '.join(DEMO_VERSIONS)}, production = {production}")
    print(f"token     in {cluster_state.state_file()} (mode 0600)")
    print(f"data dir  {record.data_dir}  (logs in {Path(record.data_dir) / 'logs'})")
    other = DEMO_VERSIONS[1] if production != DEMO_VERSIONS[1] else DEMO_VERSIONS[0]
    print(f"try       sut swap {DEMO_MODEL} {other}; sut status; sut down")


# --- sut down --------------------------------------------------------------------------------


def cmd_down(args: argparse.Namespace) -> int:
    if args.all:
        targets = cluster_state.load()
        if not targets:
            print("no cluster started by `sut up` is recorded")
            return 0
    else:
        targets = [_down_target(args)]
    for cluster in targets:
        # Workers first, so that they deregister from a gateway that still answers.
        ordered = sorted(cluster.processes, key=lambda p: p.role == "gateway")
        for proc in ordered:
            outcome = launcher.stop_process_group(proc.pid, grace=args.grace, marker=f"sut.{proc.role}")
            print(f"{cluster.name}: {proc.name} (pid {proc.pid}, {proc.url}) {outcome}")
        cluster_state.remove(cluster.name)
        print(f"{cluster.name}: down; data kept in {cluster.data_dir}")
    return 0


def _down_target(args: argparse.Namespace) -> ClusterRecord:
    if args.name:
        cluster = cluster_state.find_by_name(args.name)
        if cluster is None:
            raise CliError(f"no cluster named {args.name} in {cluster_state.state_file()}")
        return cluster
    url = args.gateway or os.environ.get("SUT_GATEWAY")
    cluster = cluster_state.find_by_gateway(url) if url else cluster_state.latest()
    if cluster is None:
        where = f"listening at {url} " if url else ""
        raise CliError(f"no cluster started by `sut up` {where}is recorded in {cluster_state.state_file()}")
    return cluster
