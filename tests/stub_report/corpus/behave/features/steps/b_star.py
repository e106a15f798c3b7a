"""Corpus: ``from behave import *``; the first registered match wins (type-specific before ``step``)."""

from behave import *  # noqa: F403

# ruff: noqa: F405  (the decorators come from the star import)

use_step_matcher("parse")


@step("the system is {state}")
def system_is(context, state):  # expect: hollow inert.state
    context.state = state


@then("the system is up")
def system_is_up(context):  # expect: implemented real.io
    with open(__file__, encoding="utf-8") as fh:
        assert fh.read()


@given("the flag is raised")
def raise_flag(context):  # expect: hollow
    context.flag = True


@then("the flag is still raised")
def flag_still_raised(context):  # expect: hollow
    assert context.flag


@then("nothing is written yet")
def pending_step(context):  # expect: stub pending.marker
    raise NotImplementedError("STEP: Then nothing is written yet")


@given("a step no feature uses")
def unused_step(context):  # expect: unused
    context.client.request("GET", "/")
