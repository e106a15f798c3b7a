"""The CI stage benchmark reads stage times, lanes and the slowest tests from a run's log and reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():  # benchmarks/ is a folder of scripts, not a package
    spec = importlib.util.spec_from_file_location("ci_stages", ROOT / "benchmarks" / "ci_stages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


LOG = """
=== Python environment === (23:59:00)
=== unit and integration tests (two lanes) === (23:59:30)
--- lane unit_a: passed after 600s; its output:
--- lane unit_b: FAILED (exit 1) after 640s; its output:
=== acceptance features: pytest, local backend (two lanes) === (00:10:10)
=== done === (00:17:40)
"""


def test_stage_times_run_over_midnight_and_lanes_are_read() -> None:
    ci = _load()
    found = ci.stages(LOG)
    assert [(s.name, s.seconds) for s in found] == [
        ("Python environment", 30),
        ("unit and integration tests (two lanes)", 640),
        ("acceptance features: pytest, local backend (two lanes)", 450),
        ("done", 0),
    ]
    assert ci.lanes(LOG) == [("unit_a", "passed", 600), ("unit_b", "FAILED (exit 1)", 640)]


def test_the_report_prints_ratios_to_the_targets_and_the_slowest_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ci = _load()
    (tmp_path / "run.log").write_text(LOG)
    (tmp_path / "unit.xml").write_text(
        '<testsuites><testsuite><testcase classname="t" name="fast" time="0.5"/>'
        '<testcase classname="t" name="slow" time="42.0"/></testsuite></testsuites>'
    )
    assert ci.main(["--log", str(tmp_path / "run.log"), "--reports", str(tmp_path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "unit and integration tests (two lanes)" in out and "3.56" in out  # 640 s of a 180 s target
    assert "total without setup (packages, venv, images)" in out and "1090" in out
    assert "unit.xml: 2 tests, 42 s in tests; slowest:" in out and "42.0 s  t::slow" in out
    assert "fast" not in out.split("unit.xml")[1]


def test_a_missing_log_is_a_usage_error(tmp_path: Path) -> None:
    assert _load().main(["--log", str(tmp_path / "none.log")]) == 2


CPU_LOG = """
=== unit and integration tests (two lanes) === (10:00:00) [cpu 1000 s, 2 cores]
=== acceptance features: pytest, local backend (two lanes) === (10:10:00) [cpu 2140 s, 2 cores]
=== done === (10:12:00) [cpu 2200 s, 2 cores]
"""


def test_a_stage_over_its_target_is_called_cpu_bound_or_waiting_from_its_cpu_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ci = _load()
    unit, features, _done = ci.stages(CPU_LOG)
    assert (unit.cpu_seconds, unit.cores, round(unit.busy, 2)) == (1140, 2, 0.95)
    assert (features.cpu_seconds, round(features.busy, 2)) == (60, 0.25)
    (tmp_path / "run.log").write_text(CPU_LOG)
    assert ci.main(["--log", str(tmp_path / "run.log"), "--reports", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "over target, and why:" in out
    assert "CPU-bound: 1140 CPU-s of work, at least 570 s on 2 cores (3.2x the target)" in out
    assert (
        "acceptance features: pytest, local backend (two lanes): 120 s > 90 s; 25% of the cores busy" in out
    )


def test_targets_met_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ci = _load()
    (tmp_path / "run.log").write_text(
        "=== lint === (10:00:00) [cpu 5 s, 2 cores]\n=== done === (10:00:10) [cpu 9 s, 2 cores]\n"
    )
    assert ci.main(["--log", str(tmp_path / "run.log"), "--reports", str(tmp_path)]) == 0
    assert "targets met" in capsys.readouterr().out
