"""Corpus: a reusable step library (like behave4cmd0), registered when a step module imports it."""

import socket

from behave import then, use_step_matcher, when

use_step_matcher("parse")  # a library sets its own matcher: it stays set for the module importing it


@when("the port {port:d} is probed")
def probe_port(context, port):  # expect: implemented real.io
    context.port_open = socket.socket().connect_ex(("127.0.0.1", port)) == 0


@then("the probe answered")
def probe_answered(context):  # expect: implemented real.state
    assert context.port_open in (True, False)
