"""Mutant: the gateway acknowledges a swap as soon as one worker has loaded the new version; the other
workers are told to load it a second later, in the background (and the old version is already gone)."""

import asyncio
import time

from sut.gateway.swap import SwapCoordinator

_original_load = SwapCoordinator._load
LATER_S = 1.0
_started: dict = {}  # (model, version) -> when the first worker's load of this swap began
_background: set = set()


async def _load_first_only(self, worker, model, payload):
    key = (model, str(payload["parameters"]["version"]))
    now = time.monotonic()
    if now - _started.get(key, -1e9) > 0.5:  # the first worker of this swap: really load
        _started[key] = now
        return await _original_load(self, worker, model, payload)

    async def later():
        await asyncio.sleep(LATER_S)
        await _original_load(self, worker, model, payload)

    task = asyncio.get_running_loop().create_task(later())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return 200, "loading"  # "done", says the gateway


SwapCoordinator._load = _load_first_only
