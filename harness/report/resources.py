"""CPU and memory of the services while the load runs: /proc for local processes, Docker for containers.

The sampler takes a list of :class:`Watched` (a name, and a pid or a container id) and polls each one
every ``interval_s`` in a thread of the test process. A local pid is measured with its descendants
(a service that forks helpers is still one service): CPU from the ticks in ``/proc/<pid>/stat``,
memory as the sum of resident set sizes. A container is measured from the engine's one-shot stats:
CPU from ``cpu_usage.total_usage`` deltas, memory as usage less the page cache (what ``docker stats``
shows). CPU is in percent of one core, so 200 % is both cores of a 2-core machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Watched:
    name: str
    pid: int | None = None
    container: str | None = None  # id or name

    def __post_init__(self) -> None:
        if (self.pid is None) == (self.container is None):
            raise ValueError(f"{self.name}: give a pid or a container, exactly one")


@dataclass(frozen=True)
class ResourceSample:
    name: str
    t: float  # wall clock
    cpu_percent: float | None  # None for the first reading (a rate needs two)
    memory_bytes: int


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(pid: int) -> list[int]:
    children, out, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def proc_reading(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used, resident bytes) of ``pid`` and its descendants; None if it is gone."""
    cpu, rss, seen = 0.0, 0, False
    for member in _tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
            statm = Path(f"/proc/{member}/statm").read_text().split()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu += (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        rss += int(statm[1]) * _PAGE
        seen = True
    return (cpu, rss) if seen else None


def container_reading(client: Any, container: str) -> tuple[float, int] | None:
    """(CPU seconds used, memory bytes less page cache) of a container; None if it is gone or stopped."""
    import docker.errors

    try:
        stats = client.api.stats(container, stream=False, one_shot=True)
    except docker.errors.APIError:
        return None
    usage = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
    memory = stats.get("memory_stats", {})
    if usage is None or "usage" not in memory:
        return None
    extra = memory.get("stats", {})
    cache = extra.get("inactive_file", extra.get("total_inactive_file", extra.get("cache", 0)))
    return usage / 1e9, int(memory["usage"] - cache)


class ResourceSampler:
    """Polls the watched services in a background thread; :meth:`stop` returns every sample."""

    def __init__(self, watched: Iterable[Watched], interval_s: float = 0.5) -> None:
        self.watched = list(watched)
        self.interval_s = interval_s
        self._samples: list[ResourceSample] = []
        self._last: dict[str, tuple[float, float]] = {}  # name -> (wall, cpu seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._docker: Any = None

    def start(self) -> ResourceSampler:
        if any(w.container for w in self.watched):
            import docker

            self._docker = docker.from_env()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[ResourceSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._docker is not None:
            self._docker.close()
            self._docker = None
        return self.samples()

    def samples(self) -> list[ResourceSample]:
        return list(self._samples)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.poll()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))

    def poll(self) -> None:
        """One reading of every watched service (also callable without the thread)."""
        for w in self.watched:
            if w.pid is not None:
                reading = proc_reading(w.pid)
            else:
                reading = container_reading(self._docker, w.container or "")
            if reading is None:
                continue
            now = time.time()
            cpu_s, memory = reading
            last = self._last.get(w.name)
            percent = None
            if last is not None and now > last[0]:
                percent = max(0.0, (cpu_s - last[1]) / (now - last[0]) * 100)
            self._last[w.name] = (now, cpu_s)
            self._samples.append(ResourceSample(w.name, now, percent, memory))
