"""Memory limits on named services of the local backend, kept across restarts and lifted at the end.

:mod:`harness.faults.memory` limits one process. A service outlives its processes (``restart`` starts a
new one under the same name), so this module keeps one limit per service name and moves each new
process of that service into the same cgroup (or gives it the same ``RLIMIT_AS``): the limit survives a
restart. The cgroup's ``oom_kill`` counter is sticky, like Docker's ``State.OOMKilled``: a kill is
attributed to the *current* process only if the counter grew since that process was launched and the
process died of SIGKILL.

Every limit is also lifted at interpreter exit and on SIGTERM (a run interrupted before its teardown leaves
no cgroup); the empty cgroups of a run that was SIGKILLed are swept by a later run once they are old.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import cleanup
from harness.faults.memory import MemoryLimit, limit_process

CGROUP_PREFIX = "servingbdd-"  # as harness.faults.memory names them
STALE_AFTER_S = 1800.0  # no scenario holds a limit this long
_instances: dict[int, ServiceMemoryLimits] = {}  # the ones with a limit applied, for the exit hook
_lock = threading.RLock()  # re-entrant: the SIGTERM hook may run while the main thread holds it


@dataclass
class _Applied:
    limit: MemoryLimit
    kills_at_launch: int  # the cgroup's oom_kill counter when the current process was put under the limit


class ServiceMemoryLimits:
    """The memory limits one backend applied, by service name."""

    def __init__(self) -> None:
        self._by_name: dict[str, _Applied] = {}

    def apply(self, name: str, pid: int, limit_bytes: int) -> str:
        """Limit ``name``'s process ``pid`` to ``limit_bytes`` (replacing an older limit); the mechanism."""
        self.remove(name)
        limit = limit_process(pid, limit_bytes)
        self._by_name[name] = _Applied(limit, limit.oom_kills())
        _track(self)
        if limit.cgroup is not None:
            sweep_stale_cgroups(limit.cgroup.parent)
        return limit.mechanism

    def reapply(self, name: str, pid: int) -> None:
        """Put a restarted process of ``name`` under its previous process's limit (no-op without one)."""
        applied = self._by_name.get(name)
        if applied is None:
            return
        old = applied.limit
        if old.cgroup is not None and old.cgroup.is_dir():
            (old.cgroup / "cgroup.procs").write_text(str(pid))
            old.pid = pid
            applied.kills_at_launch = old.oom_kills()
            return
        old.remove()
        limit = limit_process(pid, old.limit_bytes)
        self._by_name[name] = _Applied(limit, limit.oom_kills())

    def limit(self, name: str) -> MemoryLimit | None:
        applied = self._by_name.get(name)
        return None if applied is None else applied.limit

    def oom_killed(self, name: str, returncode: int | None) -> bool:
        """The kernel OOM-killed the service's current process: its cgroup counted a kill since the process
        was launched, and the process died of SIGKILL. Always False under ``rlimit`` (no kernel kill)."""
        applied = self._by_name.get(name)
        if applied is None or returncode != -signal.SIGKILL:
            return False
        return applied.limit.oom_kills() > applied.kills_at_launch

    def remove(self, name: str) -> None:
        """Lift ``name``'s limit (surviving processes go back to the parent cgroup; ours is deleted)."""
        applied = self._by_name.pop(name, None)
        if applied is not None:
            applied.limit.remove()

    def remove_all(self) -> None:
        for name in list(self._by_name):
            with contextlib.suppress(Exception):
                self.remove(name)
        _untrack(self)


def sweep_stale_cgroups(
    parent: Path, older_than_s: float = STALE_AFTER_S, pattern: str = f"{CGROUP_PREFIX}*"
) -> list[Path]:
    """Delete our empty cgroups left by runs that died without their exit hooks (e.g. SIGKILL). Only old
    ones: a recent empty one may belong to a running scenario whose worker was just OOM-killed."""
    removed = []
    now = time.time()
    for group in parent.glob(pattern):
        try:
            if now - group.stat().st_ctime < older_than_s or (group / "cgroup.procs").read_text().strip():
                continue
            group.rmdir()
            removed.append(group)
        except OSError:
            continue
    return removed


def _track(limits: ServiceMemoryLimits) -> None:
    with _lock:
        _instances[id(limits)] = limits


def _untrack(limits: ServiceMemoryLimits) -> None:
    with _lock:
        _instances.pop(id(limits), None)


def _remove_everything() -> None:
    with _lock:
        instances = list(_instances.values())
    for limits in instances:
        limits.remove_all()


cleanup.register(_remove_everything)
