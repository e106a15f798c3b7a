"""Corpus: steps nobody imports: pytest-bdd cannot see them, so what they match is undefined."""

from pytest_bdd import then


@then("an invisible step runs")
def invisible(api):  # expect: unused
    api.connect()
