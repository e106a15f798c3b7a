"""Mutant: the gateway takes any non-empty token for the join token (it checks that one is present,
not that it is the right one)."""

from sut.gateway.auth import JoinTokens


def _any_token(self, token):
    self.refresh()
    return bool(token)


JoinTokens.accepts = _any_token
