"""Mutant: the breach need not persist: the first window that still breaches at the reduced share rolls
the canary back at once, however soon after the reduction and without an alert."""

from sut.gateway.canary import CanaryController

_original = CanaryController._judge_reduced


async def _impatient(self, model, compiled, stats, breach, now):
    if breach is None:
        await _original(self, model, compiled, stats, breach, now)
    else:
        await self._roll_back(model, compiled, stats, breach)


CanaryController._judge_reduced = _impatient
