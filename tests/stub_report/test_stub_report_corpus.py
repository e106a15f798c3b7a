"""The corpus of tricky cases, each with the verdict a lead should read."""

from __future__ import annotations

import json
from pathlib import Path

from tools.stubreport import features
from tools.stubreport.report import build_report

EXPECTED = {
    # implemented: each calls a driver/backend/harness function or reads what one answered
    "cluster_with_workers": "implemented",
    "network_stable": "implemented",  # one function under two decorators
    "kill_workers": "implemented",  # typed parameter {count:d}
    "send_requests": "implemented",
    "check_answers": "implemented",  # reads world.answers, which a step filled from real calls
    "color_step": "implemented",  # custom parse type from @parse_type + @parse.with_pattern
    "corrupt_db": "implemented",  # a harness function
    "model_named": "implemented",
    "model_named_demo": "implemented",
    "typed_count": "implemented",
    "_restart": "implemented",  # registered by a helper, twice
    "_toggle": "implemented",  # registered in a loop, twice
    "swap_model": "implemented",
    "swap_ok": "implemented",  # reads module state a step filled from a real call
    "rollback": "implemented",  # passes a lambda that calls the gateway to a helper that calls it
    "pb_cluster": "implemented",  # pytest-bdd fixture
    "pb_tags": "implemented",  # pytest-bdd cfparse with extra_types
    "bh_call": "implemented",  # behave regex matcher
    # stubs
    "docstring_then_pass": "stub",
    "raises_not_implemented": "stub",
    "todo_only": "stub",
    "pending_skip": "stub",
    "<lambda>": "stub",
    "pb_string": "stub",
    "bh_pending": "stub",
    # hollow: runs, touches nothing real
    "partition_flags": "hollow",  # sets three World flags and returns
    "assert_flag": "hollow",  # asserts on a flag only steps set
    "asserts_own": "hollow",  # asserts on a value it just set
    "simulated_latency": "hollow",  # seed 004's "simulated 50-150 ms"
    "p99_hollow": "hollow",  # percentile of the simulated latencies
    "placeholder_logs": "hollow",
    "fakes_touch": "hollow",  # calls trace.touch itself
    "mark_only": "hollow",  # World.mark is bookkeeping (read from harness/world.py)
    "pretend_swap": "hollow",
    "pretend_ok": "hollow",  # module state only ever set to constants
    "bh_things": "hollow",
    "bh_table": "hollow",  # asserts only on the feature's own table
    "pb_wait": "hollow",  # only sleeps
    # unused
    "unused_step": "unused",
}


def _report(project: Path, trace: Path | None = None) -> dict:
    return build_report(project / "features", [project / "steps"], trace, base=project).as_dict()


def _verdicts(data: dict) -> dict[str, dict]:
    return {v["function"]: v for f in data["files"] for v in f["verdicts"]}


def test_every_corpus_definition_gets_its_expected_verdict(project: Path) -> None:
    verdicts = _verdicts(_report(project))
    assert {name: v["verdict"] for name, v in verdicts.items()} == EXPECTED
    for v in verdicts.values():
        assert v["reasons"], f"{v['function']} has a verdict without a reason"


def test_totals_count_each_definition_once(project: Path) -> None:
    totals = _report(project)["totals"]
    by_kind = {
        k: sum(1 for v in EXPECTED.values() if v == k) for k in ("implemented", "stub", "hollow", "unused")
    }
    assert totals["definitions"] == len(EXPECTED)
    assert (totals["implemented"], totals["stubs"], totals["hollow"], totals["unused"]) == (
        by_kind["implemented"],
        by_kind["stub"],
        by_kind["hollow"],
        by_kind["unused"],
    )
    assert all(isinstance(totals[k], int) for k in ("definitions", "undefined", "ambiguous"))


def test_helper_loop_and_stacked_decorators_register_every_pattern(project: Path) -> None:
    verdicts = _verdicts(_report(project))
    patterns = {name: sorted(p["pattern"] for p in verdicts[name]["patterns"]) for name in verdicts}
    assert patterns["_restart"] == ["a worker restarts", "the worker is restarted"]
    assert patterns["_toggle"] == ["I pause the gateway", "I resume the gateway"]
    assert patterns["network_stable"] == ["the network is healthy", "the network is stable"]
    assert patterns["<lambda>"] == ["the alpha flag is set", "the beta flag is set"]
    assert verdicts["_toggle"]["uses"] == 2  # both loop patterns matched a step
    assert verdicts["pb_tags"]["uses"] == 1  # cfparse "{tags:Word+}" with a custom type
    assert verdicts["bh_call"]["uses"] == 1  # behave "re" matcher after use_step_matcher("re")


def test_outline_background_rules_tables_and_docstrings_are_expanded(project: Path) -> None:
    path = project / "features" / "outline.feature"
    steps, errors = features.read_feature(path, "outline.feature")
    assert errors == []
    texts = [s.text for s in steps]
    assert "I kill 1 workers" in texts and "I kill 2 workers" in texts  # Examples rows substituted
    assert "every answer has status 503" in texts
    assert texts.count("a cluster with 3 workers") == 6  # the Background runs before each of 6 scenarios
    by_text = {s.text: s for s in steps}
    assert by_text["the value it set is true"].kind == "any"  # a '*' step
    assert by_text["a placeholder logs"].kind == "any"  # 'But' after '*' inherits its "Unknown" type
    assert by_text["the p99 latency is under 200 ms"].kind == "then"  # 'And' after 'Then'
    assert by_text["a worker restarts"].kind == "when"  # 'And' after 'When'
    assert by_text["I send 2 inference requests"].has_table
    assert any(s.has_docstring for s in steps if s.text == "the hive is marked unreachable")


def test_undefined_steps_come_with_a_snippet_and_ambiguous_ones_name_both_definitions(project: Path) -> None:
    data = _report(project)
    problems = next(f for f in data["files"] if f["path"] == "features/problems.feature")
    undefined = {u["text"]: u for u in problems["undefined_steps"]}
    assert set(undefined) == {
        'I reticulate 3 splines named "main"',
        "a typed count of many items",  # {n:d} does not match "many": the real matcher, not a regex guess
        "the cluster answers in 1.5 seconds",
    }
    assert (
        "@when('I reticulate {n1:d} splines named \"{text2}\"')"
        in undefined['I reticulate 3 splines named "main"']["snippet"]
    )
    assert undefined['I reticulate 3 splines named "main"']["line"] == 5
    (ambiguous,) = problems["ambiguous_steps"]
    assert ambiguous["text"] == "a model named demo"
    assert [m.split()[-1] for m in ambiguous["matches"]] == ["model_named", "model_named_demo"]
    assert data["totals"]["undefined"] == 3 and data["totals"]["ambiguous"] == 1


def test_broken_feature_and_python_files_are_reported_not_fatal(project: Path) -> None:
    data = _report(project)
    errors = {(e["path"], e["line"]) for e in data["errors"]}
    assert ("features/broken.feature", 5) in errors
    assert ("steps/broken.py", 1) in errors
    assert data["totals"]["errors"] == 2
    assert data["totals"]["definitions"] == len(EXPECTED)  # the rest is still analysed


def _decorator_line(project: Path, module: str, text: str) -> int:
    lines = (project / "steps" / module).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_trace_turns_a_passed_untouched_step_hollow(project: Path) -> None:
    kill = _decorator_line(project, "registry_steps.py", '@when("I kill {count:d} workers")')
    cluster = _decorator_line(project, "registry_steps.py", '@given("a cluster with {count:d} workers")')
    records = [
        {"keyword": "when", "text": "I kill 1 workers", "location": "features/outline.feature:9",
         "function": f"steps/registry_steps.py:{kill}", "status": "passed", "duration_s": 0.01,
         "touches": 0, "kinds": []},
        {"keyword": "given", "text": "a cluster with 3 workers", "location": "features/outline.feature:5",
         "function": f"{project}/steps/registry_steps.py:{cluster}", "status": "passed", "duration_s": 2.0,
         "touches": 4, "kinds": ["backend"]},
        {"keyword": "when", "text": "I kill 2 workers", "location": "features/outline.feature:9",
         "function": f"steps/registry_steps.py:{kill}", "status": "failed", "duration_s": 0.01,
         "touches": 0, "kinds": []},
    ]  # fmt: skip
    trace = project / "trace.jsonl"
    trace.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    data = _report(project, trace)
    verdicts = _verdicts(data)
    assert verdicts["kill_workers"]["verdict"] == "hollow"
    assert any("trace" in r for r in verdicts["kill_workers"]["reasons"])
    assert verdicts["kill_workers"]["trace_runs"] == 2 and verdicts["kill_workers"]["trace_untouched"] == 1
    assert verdicts["cluster_with_workers"]["verdict"] == "implemented"
    assert {
        "path": "trace.jsonl",
        "line": 4,
        "message": "bad trace line: Expecting value: line 1 column 1 (char 0)",
    } in data["errors"]


def test_snippets_match_the_step_they_were_made_for(project: Path) -> None:
    import parse

    from tools.stubreport.snippets import step_pattern

    for text in ('I reticulate 3 splines named "main"', "the cluster answers in 1.5 seconds", "odd {braces}"):
        pattern, params = step_pattern(text)
        result = parse.compile(pattern, case_sensitive=True).parse(text)
        assert result is not None and sorted(result.named) == sorted(params), pattern


def test_patterns_starting_with_a_field_are_matched(project: Path) -> None:
    verdicts = _verdicts(_report(project))
    assert verdicts["simulated_latency"]["used_at"] == ["features/outline.feature:37"]


def test_cache_gives_the_same_answer_and_misses_after_an_edit(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "report-cache"
    first = build_report(project / "features", [project / "steps"], base=project, cache_dir=cache).as_dict()
    second = build_report(project / "features", [project / "steps"], base=project, cache_dir=cache).as_dict()
    assert first == second == _report(project)
    feature = project / "features" / "problems.feature"
    feature.write_text(
        feature.read_text().replace("Then a typed count of many items", "Then a typed count of 5 items")
    )
    third = build_report(project / "features", [project / "steps"], base=project, cache_dir=cache).as_dict()
    assert third["totals"]["undefined"] == first["totals"]["undefined"] - 1
