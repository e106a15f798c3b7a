"""Corpus: @scenario through functools.partial, binding one scenario of one feature."""

from functools import partial

import pytest_bdd

scenario = partial(pytest_bdd.scenario, "sub/partial.feature")


@scenario("the bound one")
def test_the_bound_one():
    pass
