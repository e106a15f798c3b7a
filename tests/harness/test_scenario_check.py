"""Checks on feature files before anything starts: malformed files are ``file:line`` errors, and each
scenario's steps are resolved against a step library (undefined, ambiguous, capabilities needed)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from harness.scenario_check import ScenarioStep, ambiguous_message, lint_feature, resolve_steps, skip_reason
from harness.steps_registry import StepDefinition, load_step_library


def _feature(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.feature"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


# A small step library of real definitions (resolution only matches texts).
def _step(func_name: str) -> Callable[..., None]:
    def step(world: object, **values: object) -> None:
        """A step body (never run here: resolution only matches texts)."""

    step.__name__ = func_name
    return step


CLUSTER = StepDefinition("given", "a cluster with {n:d} workers", _step("cluster"), needs=("workers",))
KILL = StepDefinition("when", "worker-{i:d} is killed", _step("kill"), needs=("lifecycle", "workers"))
INFER = StepDefinition("when", "{n:d} requests are sent", _step("infer"))
INFER_TOO = StepDefinition("when", "{what} requests are sent", _step("infer_too"), needs=("metrics",))
SEES = StepDefinition("then", "the gateway lists {n:d} workers", _step("sees"), needs=("admin",))
LIBRARY = [CLUSTER, KILL, INFER, INFER_TOO, SEES]


# -- lint_feature ------------------------------------------------------------------------------------
def test_a_well_formed_feature_has_no_problems(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Fine
          Some description, with when and then in the middle of a sentence.

          Background:
            Given the demo model with versions "1"

          Scenario: Plain
            Given a cluster with 1 worker serving demo version "1"

          Scenario Outline: Outlined <count>
            When <count> requests are sent
            Then <count> answers come back

            Examples:
              | count |
              | 1     |
              | 2     |
        """,
    )
    assert lint_feature(path) == []


def test_an_outline_without_examples_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Outlines
          Scenario: Fine
            Given something

          Scenario Outline: Forgotten <count>
            When <count> requests are sent
        """,
    )
    (problem,) = lint_feature(path)
    assert problem.startswith(f"{path}:5: Scenario Outline 'Forgotten <count>' has no Examples rows")


def test_an_examples_table_without_rows_is_an_error_too(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Outlines
          Scenario Outline: Header only <count>
            When <count> requests are sent

            Examples:
              | count |
        """,
    )
    (problem,) = lint_feature(path)
    assert problem.startswith(f"{path}:2: ") and "has no Examples rows" in problem


def test_a_placeholder_that_is_not_a_column_is_an_error_at_its_step(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Placeholders
          Scenario Outline: <count> requests on <workers>
            Given a cluster with <workers> workers
            When <count> requests are sent within <seconds> seconds

            Examples:
              | count | workers |
              | 10    | 2       |
        """,
    )
    (problem,) = lint_feature(path, display="features/case.feature")
    assert problem.startswith("features/case.feature:4: <seconds> is not a column of the Examples of ")
    assert "(columns: count, workers)" in problem


def test_a_placeholder_in_the_title_is_checked_too(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Placeholders
          Scenario Outline: Damage to <damage>
            When the file is damaged at <where>

            Examples:
              | where  |
              | header |
        """,
    )
    (problem,) = lint_feature(path)
    assert problem.startswith(f"{path}:2: <damage> is not a column")


def test_a_step_line_before_the_first_scenario_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Steps in the description
          What this feature is about.
          Given the demo model with versions "1"
          Then the production version of demo is "1"

          Scenario: The real one
            Given something
        """,
    )
    problems = lint_feature(path)  # against the project's step library
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:3", f"{path}:4"]
    assert "a step line before the first Scenario: 'Given the demo model with versions \"1\"'" in problems[0]
    assert "would be taken as description text and never run" in problems[0]


def test_a_step_line_in_a_background_description_is_an_error(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Background
          Background: shared
            and worker-1 is killed

          Scenario: One
            Given something
        """,
    )
    # (a capitalised "And" here would be a step of the Background; lowercase, Gherkin takes it as text)
    (problem,) = lint_feature(path, registry=LIBRARY)
    assert problem.startswith(f"{path}:3: a step line before the first Scenario: 'and worker-1 is killed'")


def test_prose_that_begins_with_a_step_word_is_not_a_step(tmp_path: Path) -> None:
    """Only a line whose text is a step of the library counts (features/network_partition.feature:5)."""
    path = _feature(
        tmp_path,
        """
        Feature: Prose
          Clients keep being served by the other workers or,
          when none is left, get a clear answer.
          Then the gateway lists workers by name, and
          given time, worker-2 is killed by the kernel.

          Scenario: One
            Given something
        """,
    )
    assert lint_feature(path, registry=LIBRARY) == []
    assert lint_feature(path) == []
    # the same file against a library where a line is a step: flagged
    other = [StepDefinition("when", "none is left, get a clear answer.", _step("none"))]
    (problem,) = lint_feature(path, registry=other)
    assert problem.startswith(f"{path}:3: a step line before the first Scenario")


def test_scenarios_inside_a_rule_are_checked(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Rules
          Rule: Outlines need examples
            Scenario Outline: In a rule <x>
              When <x> happens
        """,
    )
    (problem,) = lint_feature(path)
    assert problem.startswith(f"{path}:3: ") and "has no Examples rows" in problem


def test_a_file_the_parser_refuses_is_one_problem_with_its_line(tmp_path: Path) -> None:
    path = _feature(
        tmp_path,
        """
        Feature: Broken
          Scenario: One
            Given something
            | a table | without its step |
          this line is not Gherkin
        """,
    )
    (problem,) = lint_feature(path)
    assert problem.startswith(f"{path}:5: "), problem
    assert "\n" not in problem and not problem.split(": ", 1)[1].startswith("(")


def test_the_project_features_lint_clean() -> None:
    """Every feature of the project, as the collector checks it."""
    root = Path(__file__).resolve().parents[2] / "features"
    assert [p for f in sorted(root.glob("*.feature")) for p in lint_feature(f)] == []


# -- resolve_steps -----------------------------------------------------------------------------------


def _steps(*lines: tuple[str, str]) -> list[ScenarioStep]:
    return [ScenarioStep(kw, text, f"features/x.feature:{i + 3}") for i, (kw, text) in enumerate(lines)]


def test_every_step_is_matched_and_the_needs_are_collected_in_order() -> None:
    steps = _steps(
        ("given", "a cluster with 3 workers"),
        ("when", "worker-2 is killed"),
        ("then", "the gateway lists 2 workers"),
    )
    resolution = resolve_steps(steps, LIBRARY)
    assert resolution.undefined == [] and resolution.ambiguous == []
    assert [d for _, d in resolution.definitions] == [CLUSTER, KILL, SEES]
    # each capability with the first step that needs it
    assert resolution.needs == {"workers": steps[0], "lifecycle": steps[1], "admin": steps[2]}
    assert resolution.missing({"workers", "lifecycle", "admin", "inference"}) == []
    assert resolution.missing({"inference", "workers"}) == [("lifecycle", steps[1]), ("admin", steps[2])]


def test_undefined_steps_are_all_reported_and_the_keyword_matters() -> None:
    steps = _steps(
        ("given", "a cluster with 3 workers"),
        ("given", "worker-2 is killed"),  # a When step's text under Given: not that step
        ("then", "the moon is made of cheese"),
    )
    resolution = resolve_steps(steps, LIBRARY)
    assert resolution.undefined == [steps[1], steps[2]]
    assert resolution.definitions == [(steps[0], CLUSTER), (steps[1], None), (steps[2], None)]
    assert resolution.needs == {"workers": steps[0]}


def test_a_text_two_definitions_match_is_ambiguous_naming_both() -> None:
    steps = _steps(("when", "5 requests are sent"))
    resolution = resolve_steps(steps, LIBRARY)
    assert resolution.ambiguous == [(steps[0], [INFER, INFER_TOO])]
    assert resolution.definitions == [(steps[0], INFER)], "the first registered one stands in"
    message = ambiguous_message(steps[0], [INFER, INFER_TOO])
    assert message.startswith("Ambiguous step at features/x.feature:3: When 5 requests are sent")
    assert "'{n:d} requests are sent'" in message and "'{what} requests are sent'" in message
    assert "test_scenario_check.py:" in message, "each definition's location is named"


def test_the_skip_reason_names_the_target_each_capability_and_where_it_is_first_needed() -> None:
    steps = _steps(
        ("given", "a cluster with 3 workers"),
        ("when", "worker-1 is killed"),
        ("then", "the gateway lists 2 workers"),
    )
    missing = resolve_steps(steps, LIBRARY).missing({"inference", "lifecycle"})
    assert skip_reason("mlserver", missing) == (
        "target 'mlserver' lacks 'workers' (first needed at features/x.feature:3), "
        "'admin' (first needed at features/x.feature:5)"
    )


def test_the_project_library_resolves_its_own_examples() -> None:
    """Every documented example of the real step library resolves to exactly its own definition."""
    library = load_step_library()
    for definition in library:
        # an example may go on with its data table or doc string: the step text is its first line
        keyword, _, text = (definition.example or "").split("\n", 1)[0].partition(" ")
        kw = keyword.lower() if keyword.lower() in ("given", "when", "then") else definition.keyword
        resolution = resolve_steps([ScenarioStep(kw, text, "doc")], library)
        assert resolution.undefined == [] and resolution.ambiguous == [], definition.example
        assert resolution.definitions[0][1] is definition
