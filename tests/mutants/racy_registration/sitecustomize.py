"""Mutant: worker registration is not atomic.

The gateway derives the new id from what it reads (``len(workers) + 1``), then awaits something slow
(as if persisting the registration) before it writes the entry: registrations arriving together read
the same count, get the same id, and overwrite each other's entry. Same URL dedup as the real one.
"""

import asyncio

from fastapi import Request

import sut.gateway.app as gateway_app
from sut.gateway import auth
from sut.gateway.registry import Worker, parse_models

_original_routes = gateway_app._add_registry_routes
SLOW_WRITE_S = 0.05


def _racy_routes(app, gw):
    async def register(request: Request) -> dict:
        auth.require_join(request, "register")  # the mutant breaks atomicity, not the credential check
        payload = await request.json()
        url = str(payload["url"]).rstrip("/")
        for old in [w for w in gw.registry.workers.values() if w.url == url]:
            gw.registry.deregister(old.id)
        worker_id = f"w-{len(gw.registry.workers) + 1}"  # read ...
        await asyncio.sleep(SLOW_WRITE_S)  # ... other registrations run here ...
        worker_token = f"racy-{worker_id}"  # derived from the id, in the same unguarded step
        gw.registry.workers[worker_id] = Worker(  # ... write
            id=worker_id,
            url=url,
            name=payload.get("name") or "",
            models=parse_models(payload.get("models")),
            token_digest=auth.digest(worker_token),
        )
        return {
            "id": worker_id,
            "worker_token": worker_token,
            "heartbeat_interval": gw.config.heartbeat_interval,
            "assignments": gw.swaps.assignments(),
        }

    app.post("/internal/workers/register")(register)  # registered first: it wins over the real route
    _original_routes(app, gw)


gateway_app._add_registry_routes = _racy_routes
