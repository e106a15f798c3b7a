"""Corpus: binds checkout.feature and defines steps of its own (closest wins over the conftest's)."""

import time

from pytest_bdd import parsers, scenarios, then
from steps_by_name import imported_by_name  # noqa: F401

scenarios("checkout.feature")


@then("the service is running")
def service_running_here(host):  # expect: implemented
    assert host.service("db").returncode == 0


@then(parsers.parse("we wait {seconds:d} seconds"))
def wait(seconds):  # expect: hollow output.sleep
    time.sleep(seconds * 0)


@then("a pending step")
def pending():  # expect: stub
    raise NotImplementedError
