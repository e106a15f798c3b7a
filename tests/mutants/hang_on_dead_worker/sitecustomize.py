"""Mutant: the gateway does not notice that a worker's connection died and waits for its deadline."""

import asyncio

from sut.gateway.upstream import UpstreamConnectionError, UpstreamPool

_original_post = UpstreamPool.post


async def _post_waiting_for_ever(self, base_url, path, body):
    try:
        return await _original_post(self, base_url, path, body)
    except UpstreamConnectionError:
        await asyncio.Event().wait()  # an answer that never comes: only the upstream deadline ends this


UpstreamPool.post = _post_waiting_for_ever
