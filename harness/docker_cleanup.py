"""Cleanup of Docker resources without Ryuk.

Ryuk (testcontainers' reaper) needs an image pulled from a registry, which this environment does not
have, so the harness disables it and cleans up itself:

* every container, network and volume the harness creates carries :func:`run_labels`: the run id,
  the pid of the test process, and that process's start time (to tell a reused pid from ours);
* teardown functions registered with :func:`register` run at interpreter exit and on SIGTERM,
  SIGINT and SIGHUP (chaining to the handlers that were installed before);
* a SIGKILLed test process runs nothing, so :func:`reap_leftovers`, called when a backend starts,
  removes what earlier runs left behind, but only where the labelled process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from harness import cleanup

log = logging.getLogger(__name__)

LABEL_RUN = "servingbdd.run"
LABEL_PID = "servingbdd.pid"
LABEL_PID_START = "servingbdd.pid-start"
LABEL_SCENARIO = "servingbdd.scenario"
LABEL_HOST = "servingbdd.host"  # pids mean something only on the machine that recorded them
RUN_ID = uuid.uuid4().hex[:12]  # one per test process
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_OWNER_PID = os.getpid()


def import_testcontainers() -> None:
    """Make sure testcontainers never tries to start Ryuk (its image cannot be pulled here)."""
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def run_labels() -> dict[str, str]:
    pid = os.getpid()
    return {
        LABEL_RUN: RUN_ID,
        LABEL_PID: str(pid),
        LABEL_PID_START: process_start_time(pid) or "",
        LABEL_HOST: socket.gethostname(),
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the process that created a labelled resource still runs (and is the same process).

    Resources made on another machine sharing the engine count as alive: their pid cannot be checked here.
    """
    if labels.get(LABEL_HOST, socket.gethostname()) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    recorded = labels.get(LABEL_PID_START)
    return not recorded or process_start_time(pid) in (None, recorded)


def remove_labelled(client, label_filter: str) -> tuple[int, int, int]:
    """Force-remove containers, then networks, then volumes matching ``key=value``; never raises.

    Returns how many (containers, networks, volumes) were removed.
    """
    removed = [0, 0, 0]
    with contextlib.suppress(Exception):
        for container in client.containers.list(all=True, filters={"label": label_filter}):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
                removed[0] += 1
    with contextlib.suppress(Exception):
        for network in client.networks.list(filters={"label": label_filter}):
            with contextlib.suppress(Exception):
                network.remove()
                removed[1] += 1
    with contextlib.suppress(Exception):
        for volume in client.volumes.list(filters={"label": label_filter}):
            with contextlib.suppress(Exception):
                volume.remove(force=True)
                removed[2] += 1
    return removed[0], removed[1], removed[2]


def reap_leftovers(client) -> tuple[int, int, int]:
    """Remove resources of earlier runs whose test process is gone (killed); never raises."""
    dead_runs: set[str] = set()
    with contextlib.suppress(Exception):
        labelled = [
            *(c.labels for c in client.containers.list(all=True, filters={"label": LABEL_RUN})),
            *(n.attrs.get("Labels") or {} for n in client.networks.list(filters={"label": LABEL_RUN})),
            *(v.attrs.get("Labels") or {} for v in client.volumes.list(filters={"label": LABEL_RUN})),
        ]
        for labels in labelled:
            run = labels.get(LABEL_RUN)
            if run and run != RUN_ID and not owner_alive(labels):
                dead_runs.add(run)
    totals = [0, 0, 0]
    for run in sorted(dead_runs):
        counts = remove_labelled(client, f"{LABEL_RUN}={run}")
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    if any(totals):
        log.warning(
            "removed leftovers of %d killed harness run(s): %d containers, %d networks, %d volumes",
            len(dead_runs), *totals,
        )  # fmt: skip
    return totals[0], totals[1], totals[2]


# -- teardown at exit and on signals ---------------------------------------------------------------


def register(teardown: Callable[[], object]) -> Callable[[], None]:
    """Run ``teardown`` at exit or on a terminating signal unless the returned ``unregister`` ran first
    (see :mod:`harness.cleanup`)."""
    return cleanup.register(teardown)
