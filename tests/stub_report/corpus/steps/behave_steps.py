"""Corpus: behave decorators, with use_step_matcher switching to regular expressions."""

from behave import given, step, then, use_step_matcher, when


@given("behave has {n:d} things")
def bh_things(context, n):
    context.things = n


@then("behave sees the table")
def bh_table(context):
    assert len(context.table.rows) == 2


use_step_matcher("re")


@when(r"behave calls the (?P<service>\w+) service")
def bh_call(context, service):
    context.client.call(service)


@step(r"behave is pending")
def bh_pending(context):
    raise NotImplementedError("STEP: behave is pending")


use_step_matcher("parse")
