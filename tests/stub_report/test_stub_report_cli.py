"""The command line: formats, --compare, and the exit codes CI gates rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.stubreport.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_integer_totals_and_per_file_rows(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json")
    assert code == 0
    data = json.loads(out)
    for key in ("definitions", "implemented", "stubs", "hollow", "unused", "undefined", "ambiguous"):
        assert isinstance(data["totals"][key], int)
        assert all(isinstance(row[key], int) for row in data["files"])
    assert data["files"][0]["path"] == "steps/registry_steps.py"  # the worst file comes first
    assert {"path", "verdicts", "undefined_steps", "ambiguous_steps"} <= set(data["files"][0])


def test_text_and_markdown_name_the_problems(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = run(capsys)
    assert code == 0
    assert "steps/registry_steps.py" in text and "partition_flags" in text and "Undefined steps: 3" in text
    code, markdown, _ = run(capsys, "--format", "markdown")
    assert code == 0
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
        (["--max-stubs", "7", "--max-hollow", "14", "--max-undefined", "3", "--fail-under", "40"], 0),
        (["--max-stubs", "-1"], 2),
        (["--fail-under", "101"], 2),
        (["--format", "yaml"], 2),
        (["--features", "nowhere"], 2),
        (["--steps", "nowhere"], 2),
        (["--trace", "missing.jsonl"], 2),
        (["--compare", "missing.json"], 2),
    ],
)
def test_exit_codes(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: int
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == expected, err
    if expected == 1:
        assert "threshold exceeded" in err


def test_compare_shows_progress_against_an_earlier_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, before, _ = run(capsys, "--format", "json")
    (project / "before.json").write_text(before)
    source = project / "steps" / "registry_steps.py"
    source.write_text(
        source.read_text().replace('raise NotImplementedError("later")', "world.gateway.ping()")
    )
    code, out, _ = run(capsys, "--compare", "before.json", "--format", "json")
    assert code == 0
    change = json.loads(out)["compare"]
    assert change["totals"]["stubs"]["change"] == -1
    assert change["totals"]["implemented"]["change"] == 1
    _, text, _ = run(capsys, "--compare", "before.json")
    assert "stubs" in text and "-1 (better)" in text
    (project / "bad.json").write_text("[1, 2]")
    assert run(capsys, "--compare", "bad.json")[0] == 2


def test_a_clean_library_passes_every_zero_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "steps").mkdir()
    (tmp_path / "features" / "ok.feature").write_text(
        "Feature: ok\n  Scenario: s\n    Given a cluster with 2 workers\n    Then the gateway is live\n"
    )
    (tmp_path / "steps" / "ok.py").write_text(
        textwrap.dedent(
            """
            from harness.steps_registry import given, then

            @given("a cluster with {n:d} workers")
            def cluster(world, n):
                world.start_cluster(workers=n)

            @then("the gateway is live")
            def live(world):
                assert world.gateway.live().status == 200
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    gates = ["--max-stubs", "0", "--max-hollow", "0", "--max-undefined", "0", "--max-ambiguous", "0"]
    code, out, err = run(capsys, *gates, "--fail-under", "100")
    assert code == 0, out + err


def test_script_never_imports_step_modules_nor_locust(tmp_path: Path) -> None:
    """Static analysis only: a step module with import-time side effects is read, never run."""
    (tmp_path / "features").mkdir()
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "explosive.py").write_text(
        "from harness.steps_registry import given\n"
        "raise SystemExit('imported!')\n"
        "@given('a thing')\n"
        "def thing(world):\n    pass\n"
    )
    probe = (
        "import sys, runpy; sys.argv = ['stub_report.py', '--format', 'json']\n"
        f"try:\n    runpy.run_path({str(REPO / 'tools' / 'stub_report.py')!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "assert 'locust' not in sys.modules and 'steps' not in sys.modules, 'imported'\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
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
