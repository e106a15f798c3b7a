"""The command line: formats, --compare, --explain, --trace, and the exit codes CI gates rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.stubreport.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for line in (
        "0  every threshold met",
        "1  a threshold exceeded",
        "2  usage error",
        "3  an internal error",
    ):
        assert line in out
    assert "--runner" in out and "--explain" in out


def test_json_has_integer_totals_and_per_file_rows(corpus: Callable[[str], Path], capsys) -> None:
    code, out, _ = run(capsys, str(corpus("registry")), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["runner"] == "registry"
    for key in (
        "definitions",
        "implemented",
        "stubs",
        "hollow",
        "unused",
        "undefined",
        "ambiguous",
        "errors",
    ):
        assert isinstance(data["totals"][key], int)
        assert all(isinstance(row[key], int) for row in data["files"])
    assert data["files"][0]["path"] == "steps/registry_steps.py"  # the worst file comes first


def test_text_and_markdown_name_the_problems(corpus: Callable[[str], Path], capsys) -> None:
    root = str(corpus("registry"))
    code, text, _ = run(capsys, root)
    assert code == 0
    assert "runner: registry" in text and "partition_flags" in text and "Undefined steps: 3" in text
    code, markdown, _ = run(capsys, root, "--format", "markdown")
    assert markdown.startswith("## Stub report") and "| `steps/registry_steps.py` |" in markdown


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max-stubs", "0"], 1),
        (["--max-hollow", "0"], 1),
        (["--max-undefined", "0"], 1),
        (["--max-ambiguous", "0"], 1),
        (["--max-errors", "0"], 1),
        (["--fail-under", "90"], 1),
        (["--max-stubs", "5", "--max-hollow", "15", "--max-undefined", "3", "--fail-under", "40"], 0),
        (["--max-stubs", "-1"], 2),
        (["--fail-under", "101"], 2),
        (["--format", "yaml"], 2),
        (["--runner", "cucumber-jvm"], 2),
        (["--features", "nowhere"], 2),
        (["--trace", "missing.jsonl"], 2),
        (["--compare", "missing.json"], 2),
    ],
)
def test_exit_codes(corpus: Callable[[str], Path], capsys, argv: list[str], expected: int) -> None:
    code, _, err = run(capsys, str(corpus("registry")), *argv)
    assert code == expected, err
    if expected == 1:
        assert "threshold exceeded" in err


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2]",
        "{}",
        '{"totals": []}',
        '{"totals": {"stubs": "many"}}',
        '{"totals": {}, "files": [1]}',
        "not json",
    ],
)
def test_compare_refuses_anything_but_a_report(corpus: Callable[[str], Path], capsys, content: str) -> None:
    root = corpus("registry")
    (root / "bad.json").write_text(content)
    code, _, err = run(capsys, str(root), "--compare", str(root / "bad.json"))
    assert code == 2 and "--compare" in err and "Traceback" not in err


def test_compare_shows_progress_against_an_earlier_json(corpus: Callable[[str], Path], capsys) -> None:
    root = corpus("registry")
    _, before, _ = run(capsys, str(root), "--format", "json")
    (root / "before.json").write_text(before)
    source = root / "steps" / "registry_steps.py"
    source.write_text(
        source.read_text().replace('raise NotImplementedError("later")', "world.gateway.ping()")
    )
    code, out, _ = run(capsys, str(root), "--compare", str(root / "before.json"), "--format", "json")
    change = json.loads(out)["compare"]
    assert (
        code == 0
        and change["totals"]["stubs"]["change"] == -1
        and change["totals"]["implemented"]["change"] == 1
    )


def test_no_definitions_is_an_error_never_100_percent(tmp_path: Path, capsys) -> None:
    (tmp_path / "features" / "steps").mkdir(parents=True)
    (tmp_path / "features" / "a.feature").write_text("Feature: a\n  Scenario: s\n    Given x\n")
    (tmp_path / "features" / "steps" / "steps.py").write_text("# nothing yet\n")
    code, out, err = run(capsys, str(tmp_path), "--fail-under", "90")
    assert code == 2 and out == "" and "no step definitions found" in err
    code, _, err = run(capsys, str(tmp_path / "features" / "steps"))
    assert code == 2 and "no suite of a known runner" in err


def test_behave_without_imports_is_read_not_reported_as_100_percent(tmp_path: Path, capsys) -> None:
    """Behave's step files may use its decorators without importing them (``from behave import *`` or the
    names behave injects): their definitions still count, so a stub there is reported, not 0 definitions."""
    (tmp_path / "features" / "steps").mkdir(parents=True)
    (tmp_path / "features" / "a.feature").write_text("Feature: a\n  Scenario: s\n    Given a thing\n")
    (tmp_path / "features" / "steps" / "steps.py").write_text(
        "@given('a thing')\ndef thing(context):\n    pass\n"
    )
    code, out, _ = run(capsys, str(tmp_path), "--format", "json", "--fail-under", "90")
    totals = json.loads(out)["totals"]
    assert (code, totals["definitions"], totals["stubs"], totals["undefined"]) == (1, 1, 1, 0)


def test_problems_count_once_per_file(corpus: Callable[[str], Path], capsys) -> None:
    root = corpus("registry")
    broken = root / "features" / "broken.feature"
    broken.write_text(broken.read_text() + "  more garbage\n  and more\n")
    _code, out, _ = run(capsys, str(root), "--format", "json")
    data = json.loads(out)
    per_file = [e for e in data["errors"] if e["path"] == "features/broken.feature"]
    assert len(per_file) == 1 and "more in this file" in per_file[0]["message"]
    assert data["totals"]["errors"] == 2  # broken.feature and steps/broken.py


def test_explain_names_the_rules_and_the_state(corpus: Callable[[str], Path], capsys) -> None:
    root = str(corpus("registry"))
    code, out, _ = run(capsys, root, "--explain", "assert_flag", "--explain", "the swap succeeded")
    assert code == 0
    assert "assert_flag: hollow" in out and "hive_crashed" in out
    assert "runs " in out and "swap_ok: implemented" in out
    code, out, _ = run(capsys, root, "--explain", "no such step anywhere")
    assert "no definition or feature step" in out


def test_the_same_suite_gets_the_same_report_from_anywhere(
    corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    root = corpus("registry")
    script = str(REPO / "tools" / "stub_report.py")
    outputs = []
    for cwd in (root, tmp_path, REPO):
        result = subprocess.run(
            [sys.executable, script, str(root), "--format", "json"],
            cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout)["files"])
    assert outputs[0] == outputs[1] == outputs[2]


def test_trace_turns_a_passed_untouched_step_hollow(corpus: Callable[[str], Path], capsys) -> None:
    root = corpus("registry")
    lines = (root / "steps" / "registry_steps.py").read_text().splitlines()
    kill = next(i for i, line in enumerate(lines, start=1) if '@when("I kill {count:d} workers"' in line)
    records = [
        {"keyword": "when", "text": "I kill 1 workers", "location": "features/outline.feature:10",
         "function": f"steps/registry_steps.py:{kill}", "status": "passed", "touches": 0},
        {"keyword": "when", "text": "I kill 2 workers", "location": "features/outline.feature:10",
         "function": f"{root}/steps/registry_steps.py:{kill}", "status": "failed", "touches": 0},
    ]  # fmt: skip
    trace = root / "trace.jsonl"
    trace.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    _code, out, _ = run(capsys, str(root), "--trace", str(trace), "--format", "json")
    data = json.loads(out)
    verdict = next(v for f in data["files"] for v in f["verdicts"] if v["function"] == "kill_workers")
    assert verdict["verdict"] == "hollow" and verdict["trace_runs"] == 2 and verdict["trace_untouched"] == 1
    assert any(e["path"] == "trace.jsonl" and e["line"] == 3 for e in data["errors"])


def test_script_never_imports_step_modules_nor_locust(tmp_path: Path) -> None:
    """Static analysis only: a step module with import-time side effects is read, never run."""
    (tmp_path / "features").mkdir()
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "explosive.py").write_text(
        textwrap.dedent(
            """
            from harness.steps_registry import given
            raise SystemExit('imported!')
            @given('a thing')
            def thing(world):
                pass
            """
        )
    )
    probe = (
        "import sys, runpy; sys.argv = ['stub_report.py', '--format', 'json']\n"
        f"try:\n    runpy.run_path({str(REPO / 'tools' / 'stub_report.py')!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "assert 'locust' not in sys.modules and 'steps' not in sys.modules, 'imported'\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["stubs"] == 1


def test_our_own_suite_passes_the_ci_gate(capsys) -> None:
    gates = [
        "--max-stubs",
        "0",
        "--max-hollow",
        "0",
        "--max-undefined",
        "0",
        "--max-ambiguous",
        "0",
        "--max-errors",
        "0",
    ]
    code, out, err = run(capsys, str(REPO), *gates, "--fail-under", "100")
    assert code == 0, out + err
    assert "runner: registry" in out
