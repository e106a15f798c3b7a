"""Corpus: a custom type registered with register_type (its pattern read from @with_pattern)."""

import os

import parse
from behave import register_type, use_step_matcher, when

use_step_matcher("parse")


@parse.with_pattern(r"on|off")
def parse_switch(text):
    return text == "on"


register_type(Switch=parse_switch)


@when("the switch is {switch:Switch}")
def switch(context, switch):  # expect: implemented real.io
    os.environ["CORPUS_SWITCH"] = "1" if switch else "0"
