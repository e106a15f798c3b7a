"""Corpus: a plugin of shared steps. ``# expect: VERDICT [RULE...]`` is checked by test_corpus.py."""

import http.client

import pytest
from pytest_bdd import given, parsers


@pytest.fixture
def api():
    return http.client.HTTPConnection("127.0.0.1", 9, timeout=0.1)


@pytest.fixture
def state():
    return {}


@given(parsers.parse("the api is reachable on port {port:d}"))
def api_reachable(api, port):  # expect: implemented real.fixture
    api.connect()


@given("nothing is configured")
def nothing_configured(state):  # expect: hollow inert.state
    state["configured"] = False
