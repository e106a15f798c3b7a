"""HTTP side of the feature log: labels posted back by clients, the log read by the trainer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request

from sut.gateway.admin import json_object, require_token
from sut.protocol import BadRequest

if TYPE_CHECKING:
    from sut.gateway.feature_log import FeatureLog

labels_router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_token)])


def _log_of(request: Request) -> FeatureLog:
    return request.app.state.gateway.feature_log


def _parse_labels(payload: dict[str, Any]) -> list[tuple[str, list[float]]]:
    items = payload.get("labels")
    if not isinstance(items, list) or not items:
        raise BadRequest('\'labels\' must be a non-empty list of {"id": ..., "values": [...]}')
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise BadRequest(f"labels[{i}] must be an object with a string 'id' (the request id)")
        values = item.get("values")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            raise BadRequest(f"labels[{i}].values must be a non-empty list of numbers, one per input row")
        parsed.append((item["id"], [float(v) for v in values]))
    return parsed


@labels_router.post("/v2/models/{model}/labels")
async def post_labels(model: str, request: Request) -> dict[str, Any]:
    request.app.state.gateway.catalog.get_model(model)  # 404 for an unknown model
    labels = _parse_labels(await json_object(request))
    outcome = await asyncio.to_thread(_log_of(request).add_labels, model, labels)
    if outcome.mismatched:
        raise BadRequest(
            f"label count differs from the logged input rows for request ids {outcome.mismatched} "
            f"(send one value per input row); {outcome.accepted} other id(s) were accepted"
        )
    return {"accepted": outcome.accepted, "unknown": outcome.unknown}


@admin_router.get("/feature-log")
async def feature_log(
    request: Request,
    model: str | None = None,
    after: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10_000),
) -> dict[str, Any]:
    return await asyncio.to_thread(_log_of(request).rows, model, after, limit)
