"""Mutant: any worker holding the join token may deregister any other worker (the worker token is not
checked on deregistration; heartbeats are still checked)."""

from sut.gateway import auth

_original = auth.require_owner


def _deregister_anyone(request, worker, action):
    if action == "deregister":
        return None
    return _original(request, worker, action)


auth.require_owner = _deregister_anyone
