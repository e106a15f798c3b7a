"""Rules the corpus does not mark, on small inline pytest-bdd suites; and the suite's own rule overrides."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tools.stubreport.report import build_report

FEATURE = """
Feature: f
  Scenario: s
    Given step one
    When step two
    Then step three
"""


def _suite(root: Path, steps: str, extra: dict[str, str] | None = None) -> dict[str, tuple[str, set[str]]]:
    (root / "features").mkdir(parents=True)
    (root / "features" / "f.feature").write_text(FEATURE)
    (root / "tests").mkdir()
    (root / "tests" / "test_f.py").write_text(
        "from pytest_bdd import given, when, then, scenarios, parsers\n"
        "import pathlib, pytest\n"
        "scenarios('../features/f.feature')\n" + textwrap.dedent(steps)
    )
    for name, text in (extra or {}).items():
        (root / name).write_text(textwrap.dedent(text))
    report = build_report(root)
    return {f.name: (f.verdict, {e.rule for e in f.evidence}) for f in report.functions}


def test_tooling_fixtures_are_inert_plugin_fixtures_real(tmp_path: Path) -> None:
    verdicts = _suite(
        tmp_path,
        """
        @given("step one")
        def one(monkeypatch):
            monkeypatch.setenv("X", "1")

        @when("step two")
        def two(mocker):
            mocker.patch("os.getcwd").return_value = "/"

        @then("step three")
        def three(browser):
            browser.visit("http://127.0.0.1:9/")
        """,
    )
    assert verdicts["one"][0] == "hollow"
    assert verdicts["two"][0] == "hollow" and "mock.library" in verdicts["two"][1]
    assert verdicts["three"][0] == "implemented" and "real.fixture" in verdicts["three"][1]


def test_paths_are_inert_until_read_or_written(tmp_path: Path) -> None:
    verdicts = _suite(
        tmp_path,
        """
        @given("step one")
        def one(tmp_path):
            config = tmp_path / "config.yaml"
            print(config)

        @when("step two")
        def two(tmp_path):
            (tmp_path / "config.yaml").write_text("a: 1")

        @then("step three")
        def three():
            assert pathlib.Path("/etc/hostname").exists()
        """,
    )
    assert verdicts["one"] == ("hollow", {"output.print"})
    assert verdicts["two"] == ("implemented", {"real.io"})
    assert verdicts["three"] == ("implemented", {"real.io"})


def test_feature_input_and_own_fixtures(tmp_path: Path) -> None:
    verdicts = _suite(
        tmp_path,
        """
        @pytest.fixture
        def client():
            import http.client
            return http.client.HTTPConnection("127.0.0.1", 9)

        @pytest.fixture
        def context():
            return {}

        @given("step one")
        def one(datatable, context):
            context["rows"] = datatable

        @when("step two")
        def two(client, context):
            client.request("GET", "/")
            context["answer"] = client.getresponse()

        @then("step three")
        def three(context):
            assert context["answer"].status == 200
        """,
    )
    assert verdicts["one"][0] == "hollow"
    assert verdicts["two"][0] == "implemented" and "real.fixture" in verdicts["two"][1]
    assert verdicts["three"] == ("implemented", {"real.state"})


def test_the_suite_can_name_its_own_inert_library(tmp_path: Path) -> None:
    steps = """
        import vendored_helpers

        @given("step one")
        def one():
            vendored_helpers.compute(1)

        @when("step two")
        def two():
            pass

        @then("step three")
        def three():
            pass
    """
    assert _suite(tmp_path / "a", steps)["one"] == ("implemented", {"real.library"})
    pyproject = '[tool.stub_report.rules.names]\n"vendored_helpers" = "inert.stdlib"\n'
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "pyproject.toml").write_text(pyproject)
    assert _suite(tmp_path / "b", steps)["one"][0] == "hollow"


def test_a_then_reading_state_its_scenario_made_up_is_hollow(tmp_path: Path) -> None:
    """world.pids is real in one feature (a real spawn) and made up in another: the Then there is hollow."""
    root = tmp_path
    (root / "features" / "steps").mkdir(parents=True)
    (root / "features" / "steps" / "steps.py").write_text(
        textwrap.dedent(
            """
            import subprocess
            from behave import given, then

            @given("real workers")
            def real_workers(context):
                context.pids = [subprocess.Popen(["sleep", "0"]).pid]

            @given("pretend workers")
            def pretend_workers(context):
                context.pids = [1000, 1001]

            @then("the workers are counted")
            def counted(context):
                assert len(context.pids) > 0

            @then("the workers are listed")
            def listed(context):
                assert context.pids
            """
        )
    )
    (root / "features" / "a.feature").write_text(
        "Feature: a\n  Scenario: real\n    Given real workers\n    Then the workers are counted\n"
        "  Scenario: fake\n    Given pretend workers\n    Then the workers are listed\n"
    )
    verdicts = {f.name: f.verdict for f in build_report(root).functions}
    assert verdicts == {
        "real_workers": "implemented",
        "pretend_workers": "hollow",
        "counted": "implemented",
        "listed": "hollow",
    }
