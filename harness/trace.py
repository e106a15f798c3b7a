"""Which steps touched a real service.

Every driver call (HTTP request to a service, backend action, fault) calls :func:`touch`. The runner
adapters wrap each executed step in :func:`step`, and, when a trace file is configured
(``--step-trace FILE`` / ``-D step_trace=FILE``), append one JSON line per step::

    {"keyword": "when", "text": "...", "location": "features/x.feature:12",
     "function": "steps/swap.py:41", "status": "passed", "duration_s": 0.42,
     "touches": 3, "kinds": ["http", "backend"]}

``tools/stub_report.py --trace FILE`` reads it: a step that passed with ``touches == 0`` is hollow.
A process-wide counter (not a ContextVar) so that calls made from helper threads inside a step count.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class StepTrace:
    keyword: str
    text: str
    location: str
    function: str
    status: str = "running"
    duration_s: float = 0.0
    touches: int = 0
    kinds: list[str] = field(default_factory=list)


_lock = threading.Lock()
_current: StepTrace | None = None


def touch(kind: str, detail: str = "") -> None:
    """Record that the running step reached a real service (``kind``: http, backend, fault, load, file)."""
    with _lock:
        if _current is not None:
            _current.touches += 1
            if kind not in _current.kinds:
                _current.kinds.append(kind)


@contextmanager
def step(keyword: str, text: str, location: str, function: str) -> Iterator[StepTrace]:
    """Track one executed step; the caller sets ``status`` on the yielded record."""
    global _current
    record = StepTrace(keyword, text, location, function)
    with _lock:
        _current = record
    started = time.perf_counter()
    try:
        yield record
    finally:
        record.duration_s = round(time.perf_counter() - started, 6)
        with _lock:
            _current = None


class TraceWriter:
    """Appends step records to a JSON-lines file (opened per write: safe across xdist-like runs)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: StepTrace) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")
