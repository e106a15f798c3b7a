"""Mutant: once reduced, a canary never recovers: a clean window at the reduced share is judged as if it
still breached, so a passing problem ends in a rollback."""

from sut.gateway.canary import CanaryController

_original = CanaryController._judge_reduced


async def _no_recovery(self, model, compiled, stats, breach, now):
    await _original(self, model, compiled, stats, breach or "judged a breach regardless", now)


CanaryController._judge_reduced = _no_recovery
