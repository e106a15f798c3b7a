"""Mutant: the gateway got 80 ms slower per inference request (e.g. a synchronous call added to the
request path): every answer is still right, only later."""

import asyncio

from sut.gateway.routing import Router

_original_infer = Router.infer
EXTRA_S = 0.080


async def _slower_infer(self, *args, **kwargs):
    await asyncio.sleep(EXTRA_S)
    return await _original_infer(self, *args, **kwargs)


Router.infer = _slower_infer
