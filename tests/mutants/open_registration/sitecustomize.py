"""Mutant: the gateway registers any worker, with or without the join token (heartbeat and deregistration
are still checked). A stranger's worker joins and the gateway sends it clients' requests."""

from sut.gateway import auth

_original = auth.require_join


def _open_registration(request, action):
    if action == "register":
        return None
    return _original(request, action)


auth.require_join = _open_registration
