"""Read the run-time trace (JSON lines from :mod:`harness.trace`) and fold it into the verdicts.

A step that *passed* with ``touches == 0`` reached no service: its definition is hollow whatever the
static analysis said. Definitions are found by the trace's ``function`` (``path:co_firstlineno``, which
is the first decorator's line) or by the ``def`` line. The records are the writer's own
(:class:`harness.trace.StepTrace`): one schema, defined where the file is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.trace import StepTrace

from .model import HOLLOW, STUB, SourceError, StepFunction

#: A line of the trace file: the harness's record, read back.
TraceRecord = StepTrace


def read_trace(path: Path, display: str) -> tuple[list[TraceRecord], list[SourceError]]:
    """The file's records, and an error per line that is not one (the report names it, then goes on)."""
    records: list[TraceRecord] = []
    errors: list[SourceError] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(StepTrace.from_json(json.loads(line)))
            except (ValueError, TypeError) as exc:
                errors.append(SourceError(display, number, f"bad trace line: {exc}"))
    return records, errors


def _key(location: str, base: Path) -> tuple[str, int] | None:
    path, sep, line = location.rpartition(":")
    if not sep or not line.isdigit():
        return None
    full = Path(path) if os.path.isabs(path) else base / path
    return os.path.normcase(os.path.realpath(full)), int(line)


def apply_trace(records: list[TraceRecord], functions: list[StepFunction], base: Path) -> list[str]:
    """Mark run-time hollow definitions; return trace functions that match no definition.

    Relative paths in the trace are relative to the suite root ``base`` (where the harness ran)."""
    index: dict[tuple[str, int], StepFunction] = {}
    for func in functions:
        real = os.path.normcase(os.path.realpath(func.module.path))
        index[(real, func.first_line)] = func
        index.setdefault((real, func.line), func)
    unmatched: dict[str, None] = {}
    first_untouched: dict[int, str] = {}
    for record in records:
        key = _key(record.function, base)
        func = index.get(key) if key else None
        if func is None:
            unmatched[record.function] = None
            continue
        func.trace_runs += 1
        if record.status == "passed" and record.touches == 0:
            func.trace_untouched += 1
            first_untouched.setdefault(id(func), record.location)
    for func in functions:
        if func.trace_untouched and func.verdict != STUB:
            where = first_untouched[id(func)]
            runs = f"{func.trace_untouched} of {func.trace_runs} runs"
            note = f"trace: passed without touching a service ({runs}; first at {where})"
            if func.verdict != HOLLOW:
                note += f"; the static view said {func.verdict}"
            func.reasons.insert(0, note)
            func.verdict = HOLLOW
    return list(unmatched)
