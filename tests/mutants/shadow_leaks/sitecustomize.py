"""Mutant: the shadow's answers leak to clients (every other shadowed request is answered by the shadow,
and the primary gets the copy)."""

import itertools

from sut.gateway.policies import Choice, PolicyTable

_original_choose = PolicyTable.choose
_turn = itertools.count()


def _leaky_choose(self, model, version):
    choice = _original_choose(self, model, version)
    if choice.shadow is not None and next(_turn) % 2:
        return Choice(choice.shadow, choice.version)
    return choice


PolicyTable.choose = _leaky_choose
