"""What to start of the reference cluster: :class:`ClusterSpec` (gateway, workers), :class:`TrainerSpec`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrainerSpec:
    """The drift monitor / retrainer service; flags of ``python -m sut.trainer``."""

    interval: float = 0.5  # seconds between drift checks
    window: int = 600  # input rows in the recent window
    min_window: int = 300  # smaller windows are not judged
    psi: float = 0.25
    ks_p: float = 0.01
    holdout: float = 0.25


@dataclass
class ClusterSpec:
    """What to start. Defaults suit the acceptance features."""

    workers: int = 1
    heartbeat_interval: float = 1.0
    upstream_timeout: float = 5.0
    admin_token: str = "test-admin-token"
    # the workers' credential (a file each service reads); rewriting it rotates it, and the gateway
    # accepts the previous one for ``join_token_overlap`` seconds more
    join_token: str = "test-join-token"
    join_token_overlap: float = 30.0
    memory_budget: int = 0  # bytes per worker; 0 = unlimited
    db: str = "sqlite"  # "sqlite" or a postgresql:// DSN
    artifact_root: Path | None = None  # host directory with model artifacts (see fixtures.models)
    # (model, version, artifact_uri) registered through the admin API after the gateway is up and
    # before the workers start, so that workers receive them as assignments at registration.
    # The first version registered for a model becomes its `production` alias.
    preload: list[tuple[str, str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Put an in-path fault proxy on every gateway<->worker link (partitions, latency): in the test
    # process on local, a proxy container per link on docker. Off by default: on local the proxy
    # shares the test process with the load generator and would skew performance scenarios.
    fault_links: bool = False
    # a trainer service (drift monitor + automatic retraining), started after the workers; None = none
    trainer: TrainerSpec | None = None
