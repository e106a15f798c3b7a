"""Command lines of the cluster's services, shared by ``sut up`` and the harness's local backend.

Keeping the argv in one place means the CLI, the harness and the Dockerfiles cannot disagree
about how a service is started.
"""

from __future__ import annotations

import sys
from pathlib import Path


def gateway_command(
    *,
    port: int,
    data_dir: Path,
    artifact_root: Path,
    admin_token: str,
    host: str = "127.0.0.1",
    db: str | None = None,
    heartbeat_interval: float = 1.0,
    expiry_misses: int = 3,
    upstream_timeout: float = 5.0,
    python: str = sys.executable,
) -> list[str]:
    argv = [
        python, "-m", "sut.gateway",
        "--host", host, "--port", str(port),
        "--data-dir", str(data_dir),
        "--artifact-root", str(artifact_root),
        "--admin-token", admin_token,
        "--heartbeat-interval", str(heartbeat_interval),
        "--expiry-misses", str(expiry_misses),
        "--upstream-timeout", str(upstream_timeout),
    ]  # fmt: skip
    if db:
        argv += ["--db", db]
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
    return argv
