"""Mutant: the gateway counts every 4xx against the provider, including the client's own bad input
(a 400), so a client sending bad requests makes the gateway fail over."""

import sut.gateway.failover as failover
from sut.gateway.providers import SERVER_ERROR

_original = failover.classify


def _counts_client_errors(status, transport_failure=None):
    if status is not None and 400 <= status < 500:
        return SERVER_ERROR
    return _original(status, transport_failure)


failover.classify = _counts_client_errors
