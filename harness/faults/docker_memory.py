"""Memory limits on containers (the docker backend's side of ``limit_memory`` / ``oom_killed``).

``mem_limit`` is set on the running container with ``docker update`` (swap limited to the same value,
so the kernel kills instead of swapping). A kill is judged by the container's state: Docker's
``State.OOMKilled`` is container-wide and sticky (it stays true after a restart of the same container,
and an exec'd child killed by OOM leaves it false), so it only counts together with exit code 137
(128 + SIGKILL) of the container's main process.

A ``restart`` of the docker backend creates a NEW container: the limit does not carry over by itself;
the backend re-applies it (:func:`start_options` at creation, or :func:`limit_container` right after).
"""

from __future__ import annotations

import os
from typing import Any

MECHANISM = "docker"
OOM_EXIT_CODE = 137  # 128 + SIGKILL


def limit_container(container: Any, limit_bytes: int | None) -> str:
    """Set (``None``: lift) the memory limit of a running container; the mechanism ("docker").
    ``docker update`` cannot remove a limit, so lifting raises it to the machine's memory."""
    value = machine_memory() if limit_bytes is None else int(limit_bytes)
    container.update(mem_limit=value, memswap_limit=value)
    return MECHANISM


def machine_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def start_options(limit_bytes: int | None) -> dict[str, Any]:
    """Keyword arguments for ``containers.run/create`` that start a container under the limit."""
    if limit_bytes is None:
        return {}
    return {"mem_limit": int(limit_bytes), "memswap_limit": int(limit_bytes)}


def container_oom_killed(container: Any) -> bool:
    """Exit code 137 AND ``State.OOMKilled`` of the container's main process (reloads its state)."""
    container.reload()
    state = container.attrs.get("State", {})
    return state.get("ExitCode") == OOM_EXIT_CODE and bool(state.get("OOMKilled"))
