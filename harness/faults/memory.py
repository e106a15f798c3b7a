"""Memory limits on local processes, so that the kernel's OOM killer is real.

The mechanism is picked by what the machine allows, and reported (steps and reports say which
one was used, because they behave differently):

- ``cgroup-v2``: a child cgroup with ``memory.max``; kills counted in ``memory.events`` (``oom_kill``).
- ``cgroup-v1``: a child of our memory cgroup with ``memory.limit_in_bytes``; kills counted in
  ``memory.oom_control`` (``oom_kill``).
- ``rlimit``: ``RLIMIT_AS`` on the process (``prlimit``). No kernel kill: allocations fail instead,
  so a service sees an allocation error. Only used when no cgroup is writable.

The docker backend uses the container's own ``mem_limit`` instead (see the docker backend).
"""

from __future__ import annotations

import contextlib
import os
import resource
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class MemoryLimit:
    """A limit applied to one process; :meth:`remove` undoes it."""

    pid: int
    limit_bytes: int
    mechanism: str
    cgroup: Path | None = None
    _previous_rlimit: tuple[int, int] | None = field(default=None, repr=False)

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in this limit's cgroup (0 for rlimit)."""
        if self.cgroup is None:
            return 0
        name = "memory.events" if self.mechanism == "cgroup-v2" else "memory.oom_control"
        with contextlib.suppress(OSError):
            for line in (self.cgroup / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def remove(self) -> None:
        """Lift the limit: move surviving processes back to the parent cgroup and delete ours."""
        if self.cgroup is not None:
            parent_procs = self.cgroup.parent / "cgroup.procs"
            with contextlib.suppress(OSError):
                for pid in (self.cgroup / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        parent_procs.write_text(pid)
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()
        elif self._previous_rlimit is not None:
            with contextlib.suppress(OSError, ProcessLookupError):
                resource.prlimit(self.pid, resource.RLIMIT_AS, self._previous_rlimit)


def _own_cgroup_dir() -> tuple[str, Path] | None:
    """The writable cgroup directory this process lives in, and its version."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidate = CGROUP_ROOT / "memory" / path.lstrip("/")
            if candidate.is_dir() and os.access(candidate, os.W_OK):
                return "cgroup-v1", candidate
            root = CGROUP_ROOT / "memory"
            if root.is_dir() and os.access(root, os.W_OK):
                return "cgroup-v1", root
        if hierarchy == "0" and (CGROUP_ROOT / "cgroup.controllers").exists():
            candidate = CGROUP_ROOT / path.lstrip("/")
            controllers_file = candidate / "cgroup.subtree_control"
            if os.access(candidate, os.W_OK) and "memory" in _read(controllers_file):
                return "cgroup-v2", candidate
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def detect_mechanism() -> str:
    found = _own_cgroup_dir()
    return found[0] if found else "rlimit"


def limit_process(pid: int, limit_bytes: int) -> MemoryLimit:
    """Put ``pid`` under a hard memory limit of ``limit_bytes`` by the best mechanism available."""
    found = _own_cgroup_dir()
    if found is not None:
        version, parent = found
        group = parent / f"servingbdd-{pid}-{uuid.uuid4().hex[:8]}"
        try:
            group.mkdir()
            if version == "cgroup-v1":
                (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
                # Without swap accounting the limit covers RAM only; no swap on these machines.
                with contextlib.suppress(OSError):
                    (group / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            else:
                (group / "memory.max").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):
                    (group / "memory.swap.max").write_text("0")
            (group / "cgroup.procs").write_text(str(pid))
            return MemoryLimit(pid, limit_bytes, version, cgroup=group)
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    previous = resource.prlimit(pid, resource.RLIMIT_AS)
    resource.prlimit(pid, resource.RLIMIT_AS, (limit_bytes, previous[1]))
    return MemoryLimit(pid, limit_bytes, "rlimit", _previous_rlimit=previous)
