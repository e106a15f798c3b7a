"""Corpus: steps written with the harness registry. Expected verdicts live in test_corpus.py."""

import logging
import random
import time

import parse
import pytest

from harness import faults, trace
from harness.steps_registry import given, parse_type, then, when

log = logging.getLogger(__name__)


@parse_type("Color")
@parse.with_pattern(r"red|green|blue")
def parse_color(text):
    return text


@given("a cluster with {count:d} workers")
def cluster_with_workers(world, count):
    world.start_cluster(workers=count)


@given("a docstring then pass")
def docstring_then_pass(world):
    """Will drive the gateway, later."""
    pass


@when("a step raises not implemented")
def raises_not_implemented(world):
    raise NotImplementedError("later")


@when("a todo step")
def todo_only(world):
    # TODO: wire to the gateway
    pass


@given("the network is stable")
@given("the network is healthy")
def network_stable(world):
    world.gateway.health()


@when("the network is partitioned")
def partition_flags(world):
    world.hive_crashed = True
    world.crash_detected = True
    world.registry_available = False
    return


@then("the hive is marked unreachable")
def assert_flag(world):
    assert world.hive_crashed


@then("the value it set is true")
def asserts_own(world):
    world.checked = True
    assert world.checked


@when("I kill {count:d} workers")
def kill_workers(world, count):
    world.kill_worker(count)


@when("{count:d} requests are sent over {seconds:d} seconds")
def simulated_latency(world, count, seconds):
    world.latencies = [random.uniform(50, 150) for _ in range(count)]
    time.sleep(0)
    log.info("simulated %d requests over %d s", count, seconds)


@then("the p99 latency is under {ms:d} ms")
def p99_hollow(world, ms):
    ordered = sorted(world.latencies)
    assert ordered[int(len(ordered) * 0.99) - 1] < ms


@when("I send {count:d} inference requests")
def send_requests(world, count):
    world.answers = [world.gateway.infer("demo", [[0, 0, 0, 0]]) for _ in range(count)]


@then("every answer has status {status:d}")
def check_answers(world, status):
    assert all(answer.status == status for answer in world.answers)


@then("the model color is {color:Color}")
def color_step(world, color):
    assert world.gateway.metadata("demo")["color"] == color


@when("the database is corrupted")
def corrupt_db(world):
    faults.corrupt_file(world, "catalog.db")


@then("a placeholder logs")
def placeholder_logs(world):
    log.info("(placeholder) assumed fine")


@then("it fakes a touch")
def fakes_touch(world):
    trace.touch("http", "pretend")


@given("an unused implemented step")
def unused_step(world):
    world.gateway.health()


@then("the swap window was recorded")
def mark_only(world):
    world.mark("swap")


@then("a step skipped as pending")
def pending_skip(world):
    pytest.skip("pending")


@given("a model named {name}")
def model_named(world, name):
    world.gateway.model(name)


@given("a model named demo")
def model_named_demo(world):
    world.gateway.model("demo")


@then("a typed count of {n:d} items")
def typed_count(world, n):
    assert len(world.gateway.items()) == n


def _alias(pattern, func):
    when(pattern)(func)


def _restart(world):
    world.backend.restart_worker(0)


_alias("a worker restarts", _restart)
_alias("the worker is restarted", _restart)

for _verb, _state in (("pause", "paused"), ("resume", "running")):

    @when(f"I {_verb} the gateway")
    def _toggle(world, _state=_state):
        world.backend.set_gateway_state(_state)


for _name in ("alpha", "beta"):
    then(f"the {_name} flag is set")(lambda world: None)


_kept = {}
_flags = {}


def _keep(world, key, value):
    _kept.setdefault(id(world), {})[key] = value


@when("I swap the model")
def swap_model(world):
    _keep(world, "swap", world.gateway.swap("demo", "2"))


@then("the swap succeeded")
def swap_ok(world):
    assert _kept[id(world)]["swap"].ok


@when("I pretend to swap")
def pretend_swap(world):
    _flags["swapped"] = True


@then("the pretend swap worked")
def pretend_ok(world):
    assert _flags["swapped"]


def _run_action(world, call):
    world.mark("action_started")
    _keep(world, "action", call())


@when("I roll back the model")
def rollback(world):
    _run_action(world, lambda: world.gateway.rollback("demo"))
