"""Mutant: a weighted split that ignores its weights (every version of the split gets an equal share)."""

from sut.gateway.policies import SmoothWeighted

_original_init = SmoothWeighted.__init__


def _equal_weights(self, weights):
    _original_init(self, {version: 1.0 for version, weight in weights.items() if weight > 0})


SmoothWeighted.__init__ = _equal_weights
