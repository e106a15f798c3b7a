"""Corpus: pytest-bdd decorators (parsers.parse/re/cfparse and plain strings)."""

import time

import parse
from pytest_bdd import given, parsers, then, when


@parse.with_pattern(r"[a-z]+")
def parse_word(text):
    return text


@given(parsers.parse("a pytest-bdd cluster of {n:d}"))
def pb_cluster(gateway_client, n):
    gateway_client.start(n)


@when(parsers.re(r"the operator waits (?P<seconds>\d+) seconds"))
def pb_wait(seconds):
    time.sleep(int(seconds) * 0)


@then("the plain string step holds")
def pb_string(): ...


@then(parsers.cfparse("the tags are {tags:Word+}", extra_types={"Word": parse_word}))
def pb_tags(world, tags):
    assert world.gateway.tags() == tags
