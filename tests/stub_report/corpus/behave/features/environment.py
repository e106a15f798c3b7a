"""Corpus: regular expressions become the default matcher here, and a hook opens a real client."""

import http.client

from behave import use_step_matcher

use_step_matcher("re")


def before_all(context):
    context.client = http.client.HTTPConnection("127.0.0.1", 9, timeout=0.1)


def before_scenario(context, scenario):
    context.notes = []
