"""The runner models against the runners themselves: behave's ``--dry-run -f steps.usage`` and
pytest-bdd's own step lookup, run for real on the corpus suites (tools/stubreport/verify.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.stubreport import verify
from tools.stubreport.config import SuiteConfig
from tools.stubreport.report import NoSuite, build_report
from tools.stubreport.runners import detect


def test_behave_model_equals_behave_dry_run_steps_usage(corpus: Callable[[str], Path]) -> None:
    root = corpus("behave")
    ours = verify.ours_behave(build_report(root))
    theirs = verify.run_behave(root, sys.executable, [])
    assert not theirs.errors, theirs.errors
    assert verify.differences(ours, theirs) == []
    assert ours.row() == theirs.row() == {"definitions": 16, "unused": 2, "undefined": 2, "ambiguous": 0}


def test_pytest_bdd_model_equals_pytest_bdd_lookup(corpus: Callable[[str], Path]) -> None:
    root = corpus("pytest_bdd")
    ours = verify.ours_pytest_bdd(build_report(root))
    theirs, _ = verify.run_pytest_bdd(root, sys.executable, [])
    assert not theirs.errors, theirs.errors
    assert verify.differences(ours, theirs) == []
    assert ours.row() == {"definitions": 13, "unused": 2, "undefined": 2, "ambiguous": 0}


def test_behave_ambiguous_definitions_are_what_behave_refuses(corpus: Callable[[str], Path]) -> None:
    root = corpus("behave_ambiguous")
    report = build_report(root)
    (problem,) = report.ambiguous
    assert problem.conflict == "given('the user admin logs in')"
    assert [f.name for f in problem.matches] == ["user_logs_in", "admin_logs_in"]
    behave = subprocess.run(
        [sys.executable, "-m", "behave", "--dry-run", "-f", "steps.usage"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert behave.returncode != 0 and "AmbiguousStep" in behave.stdout + behave.stderr


@pytest.mark.parametrize(
    ("suite", "runner"),
    [("registry", "registry"), ("behave", "behave"), ("pytest_bdd", "pytest-bdd"), ("rust", "rust-cucumber")],
)
def test_each_corpus_is_detected_as_its_runner(
    corpus: Callable[[str], Path], suite: str, runner: str
) -> None:
    assert detect(SuiteConfig(root=corpus(suite))) == runner


def test_runner_can_be_forced_and_nothing_found_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no suite here")
    with pytest.raises(NoSuite, match="no suite of a known runner"):
        build_report(tmp_path)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "a.feature").write_text("Feature: a\n  Scenario: s\n    Given x\n")
    with pytest.raises(NoSuite, match="behave"):
        build_report(tmp_path, runner="behave")  # no steps directory where behave would look


def _suite(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_behave_execute_steps_is_as_real_as_the_steps_it_runs(tmp_path: Path) -> None:
    root = _suite(
        tmp_path,
        {
            "features/steps/steps.py": """
                import subprocess
                from behave import given, when


                @given("a real step")
                def real(context):
                    subprocess.run(["true"], check=False)


                @given("a flag step")
                def flag(context):
                    context.flag = True


                @when("both run")
                def both(context):
                    context.execute_steps("Given a real step\\nGiven a flag step")


                @when("only the flag runs")
                def flag_only(context):
                    context.execute_steps("Given a flag step")
            """,
            "features/a.feature": """
                Feature: a
                  Scenario: s
                    When both run
                    And only the flag runs
            """,
        },
    )
    verdicts = {f.name: (f.verdict, {e.rule for e in f.evidence}) for f in build_report(root).functions}
    assert verdicts["both"] == ("implemented", {"real.steps"})
    assert verdicts["flag_only"][0] == "hollow"


def test_behave_environment_matcher_and_module_switches(tmp_path: Path) -> None:
    """``use_step_matcher`` in environment.py is the default of every step module; a module's own call
    lasts to its end (behave resets the matcher between step modules)."""
    root = _suite(
        tmp_path,
        {
            "features/environment.py": "from behave import use_step_matcher\nuse_step_matcher('re')\n",
            "features/steps/a.py": """
                from behave import given, use_step_matcher
                @given(r"(?P<n>\\d+) apples")
                def apples(context, n):
                    context.n = n
                use_step_matcher("parse")
                @given("{n:d} pears")
                def pears(context, n):
                    context.n = n
            """,
            "features/steps/b.py": """
                from behave import given
                @given(r"(?P<n>\\d+) plums")
                def plums(context, n):
                    context.n = n
            """,
            "features/a.feature": "Feature: a\n  Scenario: s\n    Given 3 apples\n    And 4 pears\n"
            "    And 5 plums\n",
        },
    )
    report = build_report(root)
    assert report.undefined == []
    assert {f.name: f.patterns[0].parser for f in report.functions} == {
        "apples": "re",
        "pears": "parse",
        "plums": "re",
    }
