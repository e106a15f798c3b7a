"""Corpus: behave refuses this at load (AmbiguousStep): the second pattern is matched by the first."""

from behave import given


@given("the user {name} logs in")
def user_logs_in(context, name):  # expect: hollow
    context.user = name


@given("the user admin logs in")
def admin_logs_in(context):  # expect: hollow
    context.user = "admin"
