"""Corpus: steps star-imported by tests/conftest.py."""

from pytest_bdd import given, parsers, then, when


@when("the host checks its service")
def host_checks(host, state):  # expect: implemented
    state["service"] = host.service("web")


@then("the service is running")
def service_running(host):  # expect: unused
    assert host.service("web").returncode == 0


@then("the recorded service ran")
def recorded_service(state):  # expect: implemented real.state
    assert state["service"].returncode == 0


@then("the recorded service ran, by get")
def recorded_service_get(state):  # expect: implemented real.state
    assert state.get("service").returncode == 0


@when("the main page is opened")
def open_main(pages):  # expect: implemented real.fixture
    pages["main"].open("http://127.0.0.1:9/")


@given(parsers.re(r"a cart with (?P<count>\d+) items?"), target_fixture="cart")
def cart(count):  # expect: hollow
    return {"items": int(count)}


@then(parsers.parse("the cart holds {count:d} items"))
def cart_holds(cart, count):  # expect: hollow
    assert cart["items"] == count
