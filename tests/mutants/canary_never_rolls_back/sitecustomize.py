"""Mutant: the canary controller never judges a breach (a bad canary is ramped to 100 % and promoted)."""

from sut.gateway.canary import CanaryController

CanaryController._breach = staticmethod(lambda doc, stats, stable: None)
