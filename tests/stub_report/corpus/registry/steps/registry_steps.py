"""Corpus: steps written with our registry. ``# expect: VERDICT [RULE...]`` on a ``def`` line is the
verdict a lead should read (and rule ids its evidence must include); test_corpus.py checks them all."""

import ast
import logging
import random
import time
from unittest.mock import MagicMock

import parse
import pytest
import requests
from hamcrest import assert_that, equal_to

from harness import faults, trace
from harness.steps_registry import StepRegistry, given, parse_type, then, when
from harness.world import World

log = logging.getLogger(__name__)
extra = StepRegistry()


@parse_type("Color")
@parse.with_pattern(r"red|green|blue")
def parse_color(text):
    return text


@given("a cluster with {count:d} workers")
def cluster_with_workers(world: World, count):  # expect: implemented real.harness
    world.start_cluster(workers=count)


@given("a docstring then pass")
def docstring_then_pass(world):  # expect: stub pending.marker
    """Will drive the gateway, later."""
    pass


@when("a step raises not implemented")
def raises_not_implemented(world):  # expect: stub
    raise NotImplementedError("later")


@when("a todo step")
def todo_only(world):  # expect: stub
    # TODO: wire to the gateway
    pass


@given("the network is stable")
@given("the network is healthy")
def network_stable(world):  # expect: implemented real.harness
    world.gateway.health()


@when("the network is partitioned")
def partition_flags(world):  # expect: hollow inert.state
    world.hive_crashed = True
    world.crash_detected = True
    world.registry_available = False
    return


@then("the hive is marked unreachable")
def assert_flag(world):  # expect: hollow
    assert world.hive_crashed


@then("the value it set is true")
def asserts_own(world):  # expect: hollow
    world.checked = True
    assert world.checked


@when("I kill {count:d} workers", needs=("processes",))
def kill_workers(world, count):  # expect: implemented real.harness
    world.kill_worker(count)


@when("{count:d} requests are sent over {seconds:d} seconds")
def simulated_latency(world, count, seconds):  # expect: hollow output.sleep output.log
    world.latencies = [random.uniform(50, 150) for _ in range(count)]
    time.sleep(0)
    log.info("simulated %d requests over %d s", count, seconds)


@then("the p99 latency is under {ms:d} ms")
def p99_hollow(world, ms):  # expect: hollow
    ordered = sorted(world.latencies)
    assert ordered[int(len(ordered) * 0.99) - 1] < ms


@when("I send {count:d} inference requests")
def send_requests(world, count):  # expect: implemented
    world.answers = [world.gateway.infer("demo", [[0, 0, 0, 0]]) for _ in range(count)]


@then("every answer has status {status:d}")
def check_answers(world, status):  # expect: implemented real.state
    assert all(answer.status == status for answer in world.answers)


@then("the model color is {color:Color}")
def color_step(world, color):  # expect: implemented
    assert world.gateway.metadata("demo")["color"] == color


@when("the database is corrupted")
def corrupt_db(world):  # expect: implemented real.harness
    faults.corrupt_file(world, "catalog.db")


@then("a placeholder logs")
def placeholder_logs(world):  # expect: hollow output.log
    log.info("(placeholder) assumed fine")


@then("it fakes a touch")
def fakes_touch(world):  # expect: hollow output.fake-touch
    trace.touch("http", "pretend")


@given("an unused implemented step")
def unused_step(world):  # expect: unused
    world.gateway.health()


@then("the swap window was recorded")
def mark_only(world):  # expect: hollow inert.harness
    world.mark("swap")


@then("a step skipped as pending")
def pending_skip(world):  # expect: stub
    pytest.skip("pending")


@given("a model named {name}")
def model_named(world, name):  # expect: implemented
    world.gateway.model(name)


@given("a model named demo")
def model_named_demo(world):  # expect: implemented
    world.gateway.model("demo")


@then("a typed count of {n:d} items")
def typed_count(world, n):  # expect: implemented
    assert len(world.gateway.items()) == n


def _alias(pattern, func):
    when(pattern)(func)


def _restart(world):  # expect: implemented
    world.backend.restart_worker(0)


_alias("a worker restarts", _restart)
_alias("the worker is restarted", _restart)

for _verb, _state in (("pause", "paused"), ("resume", "running")):

    @when(f"I {_verb} the gateway")
    def _toggle(world, _state=_state):  # expect: implemented
        world.backend.set_gateway_state(_state)


for _name in ("alpha", "beta"):
    then(f"the {_name} flag is set")(lambda world: None)


_kept = {}
_flags = {}


def _keep(world, key, value):
    _kept.setdefault(id(world), {})[key] = value


@when("I swap the model")
def swap_model(world):  # expect: implemented
    _keep(world, "swap", world.gateway.swap("demo", "2"))


@then("the swap succeeded")
def swap_ok(world):  # expect: implemented
    assert _kept[id(world)]["swap"].ok


@when("I pretend to swap")
def pretend_swap(world):  # expect: hollow
    _flags["swapped"] = True


@then("the pretend swap worked")
def pretend_ok(world):  # expect: hollow
    assert _flags["swapped"]


def _run_action(world, call):
    world.mark("action_started")
    _keep(world, "action", call())


@when("I roll back the model")
def rollback(world):  # expect: implemented
    _run_action(world, lambda: world.gateway.rollback("demo"))


@when("a mock gateway answers")
def mock_only(world):  # expect: hollow mock.library
    gateway = MagicMock()
    gateway.infer.return_value = {"status": 200}
    gateway.infer("demo")
    gateway.infer.assert_called()


@then("the flag matches with hamcrest")
def hamcrest_flag(world):  # expect: hollow
    world.flag = True
    assert_that(world.flag, equal_to(True))


@then("the literal {text} parses")
def literal_eval(world, text):  # expect: hollow
    assert ast.literal_eval(text) is not None


@when("events are appended")
def append_events(world):  # expect: hollow inert.state
    world.events.append("started")
    world.events.append("stopped")


@then("a skip in the middle")
def skip_middle(world):  # expect: hollow
    world.flag = True
    pytest.skip("environment lacks a GPU")


@extra.when("a registry object step runs", needs=("gpu",))
def registry_object(world):  # expect: implemented
    world.gateway.health()


@then("the docs site answers")
def docs_answer(world):  # expect: implemented real.library
    assert requests.get("http://127.0.0.1:9/docs", timeout=1).ok
