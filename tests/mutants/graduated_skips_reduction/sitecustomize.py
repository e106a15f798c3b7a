"""Mutant: a graduated rollback is not graduated: a breach rolls the canary back at once, its share never
reduced first."""

from sut.gateway.canary import CanaryController


async def _roll_back_at_once(self, model, compiled, stats, breach, now):
    await self._roll_back(model, compiled, stats, breach)


CanaryController._reduce = _roll_back_at_once
