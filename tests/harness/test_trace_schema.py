"""One schema for the step trace: what harness.trace writes is what tools/stub_report.py reads back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from harness import trace
from tools.stubreport.trace import TraceRecord, read_trace


def test_the_report_reads_back_exactly_what_the_harness_writes(tmp_path: Path) -> None:
    writer = trace.TraceWriter(tmp_path / "trace.jsonl")
    with trace.step("when", "I kill 1 workers", "features/x.feature:4", "steps/x.py:10") as record:
        trace.touch("backend")
        trace.touch("http")
        record.status = "passed"
    writer.write(record)
    written = json.loads((tmp_path / "trace.jsonl").read_text())
    assert "pending" not in written  # run-time state only
    assert set(written) == {f.name for f in dataclasses.fields(TraceRecord)} - {"pending"}
    records, errors = read_trace(tmp_path / "trace.jsonl", "trace.jsonl")
    assert errors == [] and records == [record]
    assert (records[0].touches, records[0].kinds) == (2, ["backend", "http"])


def test_a_line_that_is_not_a_record_is_named_and_the_others_are_read(tmp_path: Path) -> None:
    good = {"text": "a step", "function": "steps/x.py:3", "status": "passed", "touches": 0}
    lines = [json.dumps(good), "not json", "[1]", json.dumps({"text": "no function"}), ""]
    (tmp_path / "t.jsonl").write_text("\n".join(lines))
    records, errors = read_trace(tmp_path / "t.jsonl", "t.jsonl")
    assert records == [trace.StepTrace("", "a step", "", "steps/x.py:3", status="passed")]
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [(n, "bad trace line") for n in (2, 3, 4)]
    assert "missing function, status, touches" in errors[2].message
