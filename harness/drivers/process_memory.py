"""A service's resident memory, measured from outside it: ``VmRSS`` in ``/proc/<pid>/status`` of its process.

Local backend: the service's own process. Docker backend: the container's main process, as the host sees
it (``State.Pid``; containers share the host's kernel, and their processes are visible in the host's
``/proc``). Neither asks the service what it thinks it holds: that is what this measurement checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import trace
from harness.backends.base import BackendError


def host_pid(backend: Any, name: str) -> int:
    """The host pid of the service's main process."""
    info = backend.service(name)
    container_of = getattr(backend, "docker_container", None)
    if callable(container_of):
        container = container_of(name)
        pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        if pid <= 0:
            raise BackendError(f"{name}: its container has no running process")
        return pid
    if not info.ident.isdigit():
        raise BackendError(f"{name}: the {backend.name} backend gives no process id ({info.ident!r})")
    return int(info.ident)


def rss_bytes(backend: Any, name: str) -> int:
    """Resident set size of the service's main process, in bytes."""
    pid = host_pid(backend, name)
    trace.touch("backend", f"rss {name} (pid {pid})")
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise BackendError(f"{name}: cannot read /proc/{pid}/status: {exc}") from None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BackendError(f"{name}: /proc/{pid}/status has no VmRSS line (a zombie?)")
