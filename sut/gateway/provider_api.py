"""Admin endpoints of the provider lock (see :mod:`sut.gateway.failover`), behind the admin token.

- ``PUT /admin/models/{m}/providers`` ``{"providers": [{"name", "pool" | "url", "model"?, "version"?}, ...],
  "failure_threshold"?, "hold_s"?, "probe_interval_s"?, "probe_timeout_s"?}``: highest priority first;
  the first one acquires the lock. Answers the status below.
- ``GET /admin/models/{m}/providers``: the lock holder, each provider's counters and last probes.
- ``DELETE /admin/models/{m}/providers``: release the lock; the model is routed to all its workers again.
- ``GET /admin/failover/audit[?model=&action=&limit=]``: ``{"entries", "dropped", "limit"}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from sut.gateway.admin import gateway_of, json_object, require_token

router = APIRouter(prefix="/admin", dependencies=[Depends(require_token)])


@router.put("/models/{model}/providers")
async def configure(model: str, request: Request) -> dict[str, Any]:
    return await gateway_of(request).failover.configure(model, await json_object(request))


@router.get("/models/{model}/providers")
async def status(model: str, request: Request) -> dict[str, Any]:
    return gateway_of(request).failover.status(model)


@router.delete("/models/{model}/providers")
async def remove(model: str, request: Request) -> dict[str, Any]:
    return await gateway_of(request).failover.remove(model)


@router.get("/failover/audit")
async def audit(
    request: Request, model: str | None = None, action: str | None = None, limit: int = Query(1000, ge=1)
) -> dict[str, Any]:
    trail = gateway_of(request).failover.audit
    return {"entries": trail.query(model, action, limit), "dropped": trail.dropped, "limit": trail.limit}
