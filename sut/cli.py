"""``sut``: start a local reference cluster and drive its admin API.

    sut up --workers N [--port P] [--db URL] [--data-dir DIR]
    sut status [--json]
    sut swap MODEL VERSION
    sut rollback MODEL
    sut rotate-join-token [--new-token T]
    sut down

Commands other than ``up`` find the gateway from ``--gateway``, else ``$SUT_GATEWAY``, else the
cluster ``sut up`` started last (the state file, see :mod:`sut.cluster_state`). Exit codes: 0 done,
1 failed (one line on stderr says why), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from sut import admin_client, cluster_state, launcher
from sut.admin_client import AdminApiError
from sut.cluster_state import ClusterRecord, ProcessRecord
from sut.token_source import new_token, write_token_file

DEMO_MODEL = "demo"
DEMO_VERSIONS = ("1", "2")
HOST = "127.0.0.1"


class CliError(Exception):
    """An expected failure: reported as one line on stderr, exit code 1."""


# --- talking to the gateway -------------------------------------------------------------------


class AdminClient:
    """The gateway's admin API (:class:`sut.admin_client.AdminClient`, whose proxy rule keeps a local
    gateway direct); every failure becomes a one-line :class:`CliError`."""

    def __init__(self, gateway_url: str, token: str | None, timeout: float = 30.0) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self._api = admin_client.AdminClient(self.gateway_url, token, timeout=timeout)

    def close(self) -> None:
        self._api.close()

    def request(self, method: str, path: str, body: dict | None = None, *, what: str) -> Any:
        try:
            return self._api.call(method, path, json=body)
        except AdminApiError as exc:
            raise CliError(self._say(exc, what)) from exc

    def _say(self, exc: AdminApiError, what: str) -> str:
        if exc.status is None:
            if isinstance(exc.__cause__, httpx.TimeoutException):
                return f"gateway {self.gateway_url} did not answer in time"
            return f"gateway unreachable at {self.gateway_url} ({exc.__cause__})"
        if exc.status == 401:
            return f"the gateway at {self.gateway_url} rejected the admin token (401)"
        if exc.status >= 400:
            return f"{what} ({exc.status}): {exc.detail}"
        return f"{what}: the gateway answered something that is not JSON"


def _resolve_target(args: argparse.Namespace) -> tuple[str, str | None, ClusterRecord | None]:
    """Gateway URL, admin token and (when known) the cluster record, by the documented precedence."""
    url = args.gateway or os.environ.get("SUT_GATEWAY")
    cluster = cluster_state.find_by_gateway(url) if url else cluster_state.latest()
    if not url:
        if cluster is None:
            raise CliError(
                "no gateway: pass --gateway URL, set SUT_GATEWAY, or start a cluster with `sut up`"
            )
        url = cluster.gateway_url
    token = args.token or os.environ.get("SUT_ADMIN_TOKEN") or (cluster.admin_token if cluster else None)
    return url, token, cluster


def _admin(args: argparse.Namespace) -> AdminClient:
    url, token, _ = _resolve_target(args)
    if not token:
        raise CliError(f"no admin token for {url}: pass --token or set SUT_ADMIN_TOKEN")
    return AdminClient(url, token, timeout=args.timeout)


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
        if w.get("healthy")
        and {"name": DEMO_MODEL, "version": production} in _model_refs(w.get("models", []))
    ]
    return len(serving) >= workers


def _model_refs(models: list[Any]) -> list[dict[str, str]]:
    return [{"name": str(m.get("name")), "version": str(m.get("version"))} for m in models]


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


# --- sut status / swap / rollback ------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        status = admin.request("GET", "/admin/status", what="status failed")
    finally:
        admin.close()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    print(f"gateway  {status.get('gateway', admin.gateway_url)}")
    workers = status.get("workers", [])
    print(f"workers  {len(workers)}")
    for w in workers:
        models = ", ".join(f"{m['name']}:{m['version']}" for m in _model_refs(w.get("models", []))) or "-"
        health = "healthy" if w.get("healthy") else "UNHEALTHY"
        print(f"  {w.get('id')}  {w.get('url')}  {w.get('name', '')}  {health}  {models}")
    entries = status.get("models", [])
    print(f"models   {len(entries)}")
    for m in entries:
        aliases = ", ".join(f"{k}={v}" for k, v in (m.get("aliases") or {}).items()) or "no alias"
        versions = ", ".join(str(v) for v in m.get("versions", []))
        print(f"  {m.get('name')}  versions {versions}  {aliases}")
    return 0


def _print_swap(answer: dict) -> None:
    duration = answer.get("duration_s")
    took = f" in {duration:.2f} s" if isinstance(duration, int | float) else ""
    print(f"{answer.get('model')}: {answer.get('from_version')} -> {answer.get('to_version')}{took}")


def cmd_swap(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        answer = admin.request(
            "POST", f"/admin/models/{args.model}/swap", {"version": args.version}, what="swap refused"
        )
    finally:
        admin.close()
    _print_swap(answer)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        answer = admin.request("POST", f"/admin/models/{args.model}/rollback", {}, what="rollback refused")
    finally:
        admin.close()
    _print_swap(answer)
    return 0


# --- sut rotate-join-token -------------------------------------------------------------------


def cmd_rotate_join_token(args: argparse.Namespace) -> int:
    """Write a new join token into the cluster's join token file: the gateway and the workers re-read it
    (no restart); the gateway keeps accepting the previous one for its overlap (``--join-token-overlap``)."""
    url, _, cluster = _resolve_target(args)
    if cluster is None or not cluster.join_token_file:
        raise CliError(f"no join token file is recorded for {url}: only clusters `sut up` started rotate")
    admin = _admin(args)
    try:
        before = admin.request("GET", "/admin/status", what="status failed").get("join_token") or {}
        write_token_file(Path(cluster.join_token_file), args.new_token or new_token())
        deadline = time.monotonic() + args.timeout
        while True:  # the gateway takes the new token at its next look at the file (any auth, any status)
            now = admin.request("GET", "/admin/status", what="status failed").get("join_token") or {}
            if now.get("rotations", 0) > before.get("rotations", 0):
                break
            if time.monotonic() > deadline:
                raise CliError(f"the gateway at {url} did not take the new join token in {args.timeout:g} s")
            time.sleep(0.1)
    finally:
        admin.close()
    until = now.get("previous_valid_until")
    left = f"{until - time.time():.0f} s more" if isinstance(until, int | float) else "its overlap"
    print(f"join token rotated in {cluster.join_token_file}; the previous one is accepted for {left}")
    return 0


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


# --- argument parsing ------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--gateway", metavar="URL", help="gateway URL (default: $SUT_GATEWAY, else the last `sut up`)"
    )
    target.add_argument("--token", help="admin token (default: $SUT_ADMIN_TOKEN, else the state file)")
    target.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the gateway (default 60)"
    )

    parser = argparse.ArgumentParser(
        prog="sut", description="Run and drive a local reference serving cluster."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "up", help="start a gateway and N workers in the background", description=cmd_up.__doc__
    )
    up.add_argument(
        "--workers", type=_positive_int, default=2, metavar="N", help="number of workers (default 2)"
    )
    up.add_argument("--port", type=_port, default=0, metavar="P", help="gateway port (default: a free one)")
    up.add_argument("--db", metavar="URL", help="catalog database (default sqlite:///<data-dir>/catalog.db)")
    up.add_argument("--data-dir", metavar="DIR", help="default: $XDG_STATE_HOME/sut/<name>")
    up.add_argument("--name", help="cluster name (default sut-<port>)")
    up.add_argument("--token", help="admin token (default: $SUT_ADMIN_TOKEN, else a generated one)")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    up.add_argument(
        "--join-token-overlap",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds the previous join token stays valid after `sut rotate-join-token` (default 60)",
    )
    up.set_defaults(func=cmd_up)

    status = sub.add_parser("status", parents=[target], help="workers, models, versions and aliases")
    status.add_argument("--json", action="store_true", help="print the gateway's status document as JSON")
    status.set_defaults(func=cmd_status)

    swap = sub.add_parser("swap", parents=[target], help="hot-swap MODEL to VERSION on every worker")
    swap.add_argument("model", metavar="MODEL")
    swap.add_argument("version", metavar="VERSION")
    swap.set_defaults(func=cmd_swap)

    rollback = sub.add_parser("rollback", parents=[target], help="swap MODEL back to its previous version")
    rollback.add_argument("model", metavar="MODEL")
    rollback.set_defaults(func=cmd_rollback)

    rotate = sub.add_parser(
        "rotate-join-token",
        parents=[target],
        help="give the workers a new join token, without a restart",
        description=cmd_rotate_join_token.__doc__,
    )
    rotate.add_argument("--new-token", dest="new_token", help="the new token (default: a generated one)")
    rotate.set_defaults(func=cmd_rotate_join_token)

    down = sub.add_parser("down", parents=[target], help="stop a cluster started by `sut up`")
    down.add_argument(
        "--name", help="the cluster to stop (default: by --gateway/$SUT_GATEWAY, else the last)"
    )
    down.add_argument("--all", action="store_true", help="stop every cluster in the state file")
    down.add_argument(
        "--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL (default 10)"
    )
    down.set_defaults(func=cmd_down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        commands = "up, status, swap, rollback, rotate-join-token, down"
        print(f"sut: error: a command is required ({commands})", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (CliError, cluster_state.StateError) as exc:
        print(f"sut {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sut {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sut {args.command}: interrupted", file=sys.stderr)
        return 130
