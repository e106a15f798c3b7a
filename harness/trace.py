"""Which steps touched a real service.

Every driver call (HTTP request to a service, backend action, fault) calls :func:`touch`. The runner
adapters wrap each executed step in :func:`step`, and, when a trace file is configured
(``--step-trace FILE`` / ``-D step_trace=FILE``), append one JSON line per step::

    {"keyword": "when", "text": "...", "location": "features/x.feature:12",
     "function": "steps/swap.py:41", "status": "passed", "duration_s": 0.42,
     "touches": 3, "kinds": ["http", "backend"]}

``tools/stub_report.py --trace FILE`` reads it back with :meth:`StepTrace.from_json` (one schema for the
writer and the reader): a step that passed with ``touches == 0`` is hollow.
A process-wide counter (not a ContextVar) so that calls made from helper threads inside a step count.

A *setup* step (one cluster option among several, see :mod:`harness.steps_registry`) only describes what a
later step applies when it starts the services: it calls :func:`defer_current`, and whatever is touched
inside :func:`applying` is credited to it too. Its record is written once that happened (or at the end of
the scenario, :meth:`TraceWriter.flush`), so a setup step whose options were never applied stays hollow.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: What a trace line must hold for the hollow check (the other fields have defaults).
REQUIRED = ("text", "function", "status", "touches")


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
    pending: bool = field(default=False, repr=False)  # deferred, not applied yet: not written yet

    def to_json(self) -> dict[str, Any]:
        """The line :class:`TraceWriter` writes (``pending`` is run-time state, not part of the file)."""
        data = asdict(self)
        del data["pending"]
        return data

    @classmethod
    def from_json(cls, raw: Any) -> StepTrace:
        """A written line back into a record (what the stub report reads); ValueError/TypeError when it is
        not one, so that a reader can name the bad line."""
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return cls(
            keyword=str(raw.get("keyword", "")),
            text=str(raw["text"]),
            location=str(raw.get("location", "")),
            function=str(raw["function"]),
            status=str(raw["status"]),
            duration_s=float(raw.get("duration_s", 0.0)),
            touches=int(raw["touches"]),
            kinds=[str(k) for k in raw.get("kinds", [])],
        )


_lock = threading.Lock()
_current: StepTrace | None = None
_deferred: list[StepTrace] = []  # setup steps waiting for a later step to apply what they described
_applying: list[StepTrace] = []  # setup steps being applied right now: credited with every touch


def touch(kind: str, detail: str = "") -> None:
    """Record that the running step reached a real service (``kind``: http, backend, fault, load, file)."""
    with _lock:
        for record in ([_current] if _current is not None else []) + _applying:
            record.touches += 1
            if kind not in record.kinds:
                record.kinds.append(kind)


def current() -> StepTrace | None:
    """The record of the step running now (its text and ``feature:line``), if any."""
    return _current


def defer_current() -> None:
    """The running step describes what a later step applies: credit it with that step's touches."""
    with _lock:
        if _current is not None and _current not in _deferred:
            _current.pending = True
            _deferred.append(_current)


@contextmanager
def applying() -> Iterator[None]:
    """Apply what the deferred steps described: every touch made meanwhile counts for them too."""
    with _lock:
        records = list(_deferred)
        _deferred.clear()
        _applying.extend(records)
    try:
        yield
    finally:
        with _lock:
            for record in records:
                _applying.remove(record)
                record.pending = False


def forget_deferred() -> None:
    """End of a scenario: what was never applied stays as it is (hollow when it touched nothing)."""
    with _lock:
        for record in _deferred:
            record.pending = False
        _deferred.clear()


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
    """Appends step records to a JSON-lines file (opened per write: safe across xdist-like runs); a
    deferred record is held until what it described was applied, or until :meth:`flush`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._held: list[StepTrace] = []

    def write(self, record: StepTrace) -> None:
        self._held.append(record)
        ready = [r for r in self._held if not r.pending]
        self._held = [r for r in self._held if r.pending]
        self._append(ready)

    def flush(self) -> None:
        """Write every held record (the end of a scenario)."""
        ready, self._held = self._held, []
        self._append(ready)

    def _append(self, records: list[StepTrace]) -> None:
        if not records:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json()) + "\n")
