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
