"""Corpus: imported by name only (not a fixture of the importer: still invisible)."""

from pytest_bdd import then


@then("a step imported by name runs")
def imported_by_name(api):  # expect: unused
    api.connect()
