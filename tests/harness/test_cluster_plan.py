"""The cluster a scenario describes with setup steps: options from a table or add-on steps, stacked in any
order, refused in the feature's words when they conflict or come too late; and the trace credit of a
setup step (no service is started here: the plan is judged before anything would start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import trace
from harness.backends.local import LocalBackend
from harness.world import World
from steps.cluster_plan import MB, PLAN, add_to_plan, require_setup, table_options


@pytest.fixture
def world(tmp_path: Path):
    the_world = World(LocalBackend(tmp_path / "cluster"), workdir=tmp_path / "world")
    yield the_world
    the_world.close()


def _as_step(text: str, line: int):
    return trace.step("given", text, f"features/x.feature:{line}", "steps/cluster.py:1")


def test_the_table_takes_every_option_and_its_values() -> None:
    fields = table_options(
        [
            ["option", "value"],
            ["workers", "3 workers"],
            ["heartbeat", "0.3 seconds"],
            ["upstream deadline", "1 second"],
            ["memory budget", "100 MB"],
            ["links", "accept network faults"],
            ["trainer", "checking every 0.5 seconds"],
            ["catalog", "PostgreSQL"],
        ]
    )
    assert (
        fields["workers"] == 3 and fields["heartbeat_interval"] == 0.3 and fields["upstream_timeout"] == 1.0
    )
    assert (
        fields["memory_budget"] == 100 * MB and fields["fault_links"] is True and fields["postgres"] is True
    )
    assert fields["trainer"].interval == 0.5


@pytest.mark.parametrize(
    ("row", "said"),
    [
        (
            ["heartbeats", "1 second"],
            "unknown cluster option 'heartbeats'; the options are: workers, heartbeat",
        ),
        (["heartbeat", "fast"], "cluster option 'heartbeat': 'fast' is not a duration such as '0.3 seconds'"),
        (["links", "cut"], "'cut' is not 'accept network faults' or 'plain'"),
        (["memory budget", "1 GB"], "'1 GB' is not a size in decimal megabytes"),
        (["workers"], "each row of the cluster table has 2 cells"),
    ],
)
def test_a_wrong_table_row_is_refused_saying_what_is_accepted(row: list[str], said: str) -> None:
    with pytest.raises(AssertionError) as caught:
        table_options([row])
    assert said in str(caught.value), str(caught.value)


def test_options_stack_in_any_order_and_a_conflict_names_both_steps(world: World) -> None:
    with _as_step("the cluster's links accept network faults", 4):
        add_to_plan(world, fault_links=True)
    with _as_step('a cluster with 2 workers serving demo version "1"', 5):
        add_to_plan(world, "demo", "1", workers=2)
    with _as_step("the cluster has a heartbeat every 0.3 seconds", 6):
        add_to_plan(world, heartbeat_interval=0.3)
    plan = world.stash[PLAN]
    assert (plan.model, plan.version) == ("demo", "1")
    assert plan.fields == {"fault_links": True, "workers": 2, "heartbeat_interval": 0.3}
    with pytest.raises(AssertionError) as caught, _as_step("the cluster has a heartbeat every 1 seconds", 7):
        add_to_plan(world, heartbeat_interval=1.0)
    message = str(caught.value)
    assert "x.feature:7" in message and "x.feature:6" in message and "already set it to 0.3" in message
    with pytest.raises(AssertionError, match="starts a second cluster"), _as_step("a cluster ...", 8):
        add_to_plan(world, "demo", "2", workers=1)


def test_a_setup_step_after_the_cluster_started_says_where_to_move_it(world: World) -> None:
    with _as_step('a cluster with 1 worker serving demo version "1"', 3):
        add_to_plan(world, "demo", "1", workers=1)
    world.stash[PLAN].started_for = "'demo version \"2\" is registered in the catalog' (features/x.feature:4)"
    with pytest.raises(AssertionError) as caught, _as_step("the cluster's links accept network faults", 5):
        add_to_plan(world, fault_links=True)
    assert 'already started before \'demo version "2" is registered' in str(caught.value)
    assert "move this step above that one" in str(caught.value)


def test_a_step_needing_an_option_the_scenario_lacks_names_the_step_to_add(world: World) -> None:
    with pytest.raises(AssertionError, match="needs a cluster: add a step like 'Given a cluster with 2"):
        require_setup(world, "links")
    with _as_step('a cluster with 2 workers serving demo version "1"', 3):
        add_to_plan(world, "demo", "1", workers=2)
    with pytest.raises(AssertionError) as caught:
        require_setup(world, "links")
    message = str(caught.value)
    assert "needs a cluster whose links accept network faults" in message
    assert "'And the cluster's links accept network faults'" in message
    assert "'| links | accept network faults |'" in message
    with pytest.raises(AssertionError) as caught:
        require_setup(world, "trainer")
    assert "'And the cluster has a drift trainer checking every 0.5 seconds'" in str(caught.value)


def test_a_deferred_setup_step_is_written_with_what_applying_it_touched(tmp_path: Path) -> None:
    writer = trace.TraceWriter(tmp_path / "trace.jsonl")
    with _as_step("the cluster's links accept network faults", 4) as setup:
        trace.defer_current()
    setup.status = "passed"
    writer.write(setup)
    assert not (tmp_path / "trace.jsonl").exists(), "a deferred record is held until it is applied"
    with _as_step("demo version 2 is registered in the catalog", 5) as action:
        with trace.applying():
            trace.touch("backend", "start")
        trace.touch("http", "register")
    action.status = "passed"
    writer.write(action)
    records = {r["text"]: r for r in map(json.loads, (tmp_path / "trace.jsonl").read_text().splitlines())}
    assert records["the cluster's links accept network faults"]["touches"] == 1
    assert records["the cluster's links accept network faults"]["kinds"] == ["backend"]
    assert records["demo version 2 is registered in the catalog"]["touches"] == 2
    assert "pending" not in records["demo version 2 is registered in the catalog"]


def test_a_setup_step_never_applied_stays_hollow(tmp_path: Path) -> None:
    writer = trace.TraceWriter(tmp_path / "trace.jsonl")
    with _as_step("the cluster's links accept network faults", 4) as setup:
        trace.defer_current()
    setup.status = "passed"
    writer.write(setup)
    trace.forget_deferred()
    writer.flush()
    (record,) = map(json.loads, (tmp_path / "trace.jsonl").read_text().splitlines())
    assert record["touches"] == 0 and record["status"] == "passed"
