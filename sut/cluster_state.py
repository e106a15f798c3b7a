"""The state file of the clusters started by ``sut up``.

One JSON file (mode 0600, it holds admin tokens) under ``$XDG_STATE_HOME/sut`` (default
``~/.local/state/sut``) lists the running clusters, newest last, so that ``sut status``, ``swap``,
``rollback`` and ``down`` can find the gateway, its token and the processes to stop.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE_NAME = "clusters.json"


def state_home() -> Path:
    """``$XDG_STATE_HOME/sut``, else ``~/.local/state/sut``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sut"


def state_file() -> Path:
    return state_home() / STATE_FILE_NAME


@dataclass
class ProcessRecord:
    """One detached service process; it leads its own session, so ``pid`` is also its group id."""

    role: str  # "gateway" | "worker"
    name: str
    pid: int
    url: str
    log: str


@dataclass
class ClusterRecord:
    name: str
    gateway_url: str
    admin_token: str
    data_dir: str
    started_at: float
    processes: list[ProcessRecord] = field(default_factory=list)
    # the workers' join token lives in this file (mode 0600), never in the state file: rewriting it
    # rotates the token (``sut rotate-join-token``)
    join_token_file: str = ""

    @classmethod
    def from_dict(cls, raw: dict) -> ClusterRecord:
        procs = [ProcessRecord(**p) for p in raw.get("processes", [])]
        return cls(**{**raw, "processes": procs})


class StateError(RuntimeError):
    """The state file cannot be read or written; the message says which file and why."""


def load(path: Path | None = None) -> list[ClusterRecord]:
    path = path or state_file()
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
        return [ClusterRecord.from_dict(c) for c in raw.get("clusters", [])]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc


def save(clusters: list[ClusterRecord], path: Path | None = None) -> Path:
    """Write atomically (temp file + rename), readable by the owner only."""
    path = path or state_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = json.dumps({"clusters": [asdict(c) for c in clusters]}, indent=2)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def add(cluster: ClusterRecord, path: Path | None = None) -> Path:
    clusters = [c for c in load(path) if c.name != cluster.name]
    return save([*clusters, cluster], path)


def remove(name: str, path: Path | None = None) -> None:
    save([c for c in load(path) if c.name != name], path)


def latest(path: Path | None = None) -> ClusterRecord | None:
    clusters = load(path)
    return clusters[-1] if clusters else None


def find_by_gateway(url: str, path: Path | None = None) -> ClusterRecord | None:
    wanted = url.rstrip("/")
    for cluster in reversed(load(path)):
        if cluster.gateway_url.rstrip("/") == wanted:
            return cluster
    return None


def find_by_name(name: str, path: Path | None = None) -> ClusterRecord | None:
    for cluster in reversed(load(path)):
        if cluster.name == name:
            return cluster
    return None
