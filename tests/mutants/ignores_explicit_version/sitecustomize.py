"""Mutant: the gateway ignores the version a request names (its policy or production answers instead)."""

from sut.gateway.policies import PolicyTable

_original_choose = PolicyTable.choose


def _ignore_named(self, model, version):
    return _original_choose(self, model, None)


PolicyTable.choose = _ignore_named
