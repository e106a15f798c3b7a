"""The corpus: real-world-style cases for every runner, each definition marked with the verdict a lead
should read (``# expect: VERDICT [RULE...]`` on its ``def``/``fn`` line; the rules are ids of
``rules.toml`` its evidence must name)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.stubreport import rules as rules_mod
from tools.stubreport.report import Report, build_report

EXPECT = re.compile(r"\b(?:def|fn)\s+(\w+)\s*\(.*(?:#|//)\s*expect:\s*(\w+)((?:\s+[\w.-]+)*)\s*$")
SUITES = ("registry", "behave", "pytest_bdd", "rust")


def expectations(root: Path) -> dict[tuple[str, int], tuple[str, set[str]]]:
    found: dict[tuple[str, int], tuple[str, set[str]]] = {}
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.rs")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = EXPECT.search(line)
            if match:
                rel = path.relative_to(root).as_posix()
                found[(rel, number)] = (match.group(2), set(match.group(3).split()))
    return found


def verdicts(report: Report) -> dict[tuple[str, int], tuple[str, set[str], list[str]]]:
    return {(f.path, f.line): (f.verdict, {e.rule for e in f.evidence}, f.reasons) for f in report.functions}


@pytest.mark.parametrize("suite", SUITES)
def test_every_marked_definition_gets_its_verdict(corpus: Callable[[str], Path], suite: str) -> None:
    root = corpus(suite)
    expected = expectations(root)
    got = verdicts(build_report(root))
    assert expected, f"no expectations marked in the {suite} corpus"
    wrong = {}
    for key, (verdict, rule_ids) in expected.items():
        if key not in got:
            wrong[key] = f"expected {verdict}, the report found no definition here"
            continue
        actual, evidence, reasons = got[key]
        if actual != verdict or not rule_ids <= evidence:
            wrong[key] = f"expected {verdict} {sorted(rule_ids)}, got {actual} {sorted(evidence)}: {reasons}"
    assert not wrong, "\n".join(f"{path}:{line}: {why}" for (path, line), why in sorted(wrong.items()))
    unmarked = sorted(set(got) - set(expected))
    assert not [k for k in unmarked if not k[0].endswith(("registry_steps.py",))], unmarked


@pytest.mark.parametrize("suite", SUITES)
def test_every_verdict_comes_with_reasons(corpus: Callable[[str], Path], suite: str) -> None:
    for func in build_report(corpus(suite)).functions:
        assert func.reasons, f"{func.where} {func.name} is {func.verdict} without a reason"


def test_every_rule_has_a_corpus_case() -> None:
    """Each rule of rules.toml is exercised by at least one marked definition (or is said not to be)."""
    rules = rules_mod.load()
    marked: set[str] = set()
    for suite in SUITES:
        for _, rule_ids in expectations(Path(__file__).parent / "corpus" / suite).values():
            marked |= rule_ids
    without_case = {
        "real.steps": "behave's execute_steps: covered by test_stub_report_runners.py",
        "real.data": "work on what a real call returned: always next to that call's own evidence",
        "inert.stdlib": "the default for the standard library, never reported as evidence",
        "inert.builtin": "the default for builtins, never reported as evidence",
        "inert.assert": "judged by what it asserts on: see hamcrest_flag (hollow)",
        "inert.tooling": "the runner's API, never reported as evidence",
        "inert.fixture": "covered by test_classify.py",
        "inert.input": "covered by test_classify.py",
        "mock.fixture": "covered by test_classify.py",
        "output.print": "covered by test_classify.py",
        "path.library": "covered by test_classify.py",
        "path.fixture": "covered by test_classify.py",
    }
    missing = set(rules.rules) - marked - set(without_case)
    assert not missing, f"rules with no corpus case: {sorted(missing)}"


def test_registry_problems_undefined_ambiguous_and_snippets(corpus: Callable[[str], Path]) -> None:
    data = build_report(corpus("registry")).as_dict()
    problems = next(f for f in data["files"] if f["path"] == "features/problems.feature")
    undefined = {u["text"]: u for u in problems["undefined_steps"]}
    assert set(undefined) == {
        'I reticulate 3 splines named "main"',
        "a typed count of many items",  # {n:d} does not match "many": the real matcher, not a guess
        "the cluster answers in 1.5 seconds",
    }
    assert (
        "@when('I reticulate {n1:d} splines named \"{text2}\"', example="
        in undefined['I reticulate 3 splines named "main"']["snippet"]
    )  # the snippet a run prints (harness.snippets): one generator
    (ambiguous,) = problems["ambiguous_steps"]
    assert ambiguous["text"] == "a model named demo"
    assert [m.split()[-1] for m in ambiguous["matches"]] == ["model_named", "model_named_demo"]


def test_registry_helpers_loops_and_stacked_decorators_register_every_pattern(
    corpus: Callable[[str], Path],
) -> None:
    report = build_report(corpus("registry"))
    patterns = {f.name: sorted(p.text or "" for p in f.patterns) for f in report.functions}
    assert patterns["_restart"] == ["a worker restarts", "the worker is restarted"]
    assert patterns["_toggle"] == ["I pause the gateway", "I resume the gateway"]
    assert patterns["network_stable"] == ["the network is healthy", "the network is stable"]
    assert patterns["<lambda>"] == ["the alpha flag is set", "the beta flag is set"]
    assert patterns["registry_object"] == ["a registry object step runs"]  # StepRegistry, needs=...


def test_registry_broken_files_are_reported_once_per_file(corpus: Callable[[str], Path]) -> None:
    data = build_report(corpus("registry")).as_dict()
    assert {(e["path"], e["line"]) for e in data["errors"]} == {
        ("features/broken.feature", 5),
        ("steps/broken.py", 1),
    }
    assert data["totals"]["errors"] == 2


def test_behave_reads_lower_case_keywords_single_quote_docstrings_and_rules(
    corpus: Callable[[str], Path],
) -> None:
    report = build_report(corpus("behave"))
    texts = {(s.text, s.kind) for s in report.suite.steps}
    assert ("a note is taken", "when") in texts  # "when a note is taken": lower case
    assert ("the switch is on", "when") in texts  # followed by a ''' doc string
    assert ("the flag is raised", "given") in texts  # a Rule's Background
    assert {p.step.text for p in report.undefined} == {
        "a step nobody wrote for 9",
        "a step nobody wrote for 10",
    }


def test_behave_first_registered_match_wins_and_is_not_ambiguous(corpus: Callable[[str], Path]) -> None:
    report = build_report(corpus("behave"))
    runs = {(s.kind, s.text): [f.name for f in report.suite.resolve(s).runs] for s in report.suite.steps}
    assert runs[("then", "the system is up")] == ["system_is_up"]  # type-specific before @step
    assert runs[("given", "the system is degraded")] == ["system_is"]
    assert report.ambiguous == []


def test_pytest_bdd_binding_visibility_and_skip_tags(corpus: Callable[[str], Path]) -> None:
    report = build_report(corpus("pytest_bdd"))
    data = report.as_dict()
    assert data["unbound_features"] == ["features/unbound.feature"]
    assert {p.step.text for p in report.undefined} == {
        "an invisible step runs",
        "a step imported by name runs",
    }
    texts = {s.text for s in report.suite.steps}
    assert "a step nobody wrote" not in texts  # @skip: pytest-bdd never runs it
    assert "a step in a scenario nobody binds" not in texts  # @scenario(partial) bound the other one
    service = next(s for s in report.suite.steps if s.text == "the service is running")
    assert [f.name for f in report.suite.resolve(service).runs] == ["service_running_here"]  # closest wins


def test_rust_matching_ambiguity_and_snippet(corpus: Callable[[str], Path]) -> None:
    data = build_report(corpus("rust")).as_dict()
    feature = next(f for f in data["files"] if f["path"] == "tests/features/churn.feature")
    (ambiguous,) = feature["ambiguous_steps"]
    assert ambiguous["text"] == 'a worker "w1" exists'  # an expr and a regex both match: cucumber-rs fails it
    (undefined,) = feature["undefined_steps"]
    assert '#[then(expr = "a step nobody wrote")]' in undefined["snippet"]
