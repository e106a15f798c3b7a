"""Mutant: the gateway waits 40 ms before every inference (a slow call added to the hot path).

Nothing fails and every answer is right: only the latency grows, by far more than a shared test
machine's noise between runs. ``regression.feature`` must report it against a baseline of the real
cluster (``tests/test_load_mutants.py``).
"""

import asyncio

from sut.gateway.routing import Router

ADDED_S = 0.040
_original_infer = Router.infer


async def _slow_infer(self, *args, **kwargs):
    await asyncio.sleep(ADDED_S)
    return await _original_infer(self, *args, **kwargs)


Router.infer = _slow_infer
