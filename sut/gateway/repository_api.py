"""The V2 repository extension on the gateway, behind the admin token: list, load a version, unload.

A cluster-wide view of the workers' own repository endpoints: ``load`` makes a version the model's
``production`` version on every worker (a hot swap when it differs, a reload on the workers that lack it
when the model was unloaded); ``unload`` stops routing to every version of the model, lets each worker
finish the requests it is running (the worker's unload drains them) and releases it. An unloaded model
is not ready, and workers that register afterwards are not told to load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request

from sut.gateway.admin import gateway_of, optional_str, require_token
from sut.protocol import BadRequest, parse_json

if TYPE_CHECKING:
    from sut.gateway.app import Gateway

router = APIRouter(prefix="/v2/repository", dependencies=[Depends(require_token)])


async def _parameters(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be a JSON object")
    return parameters


@router.post("/index")
async def index(request: Request) -> list[dict[str, Any]]:
    gw: Gateway = gateway_of(request)
    out = []
    for name, entry in gw.catalog.models.items():
        for version in entry.versions:
            holders = [w for w in gw.registry.holders(name, version) if w.healthy]
            row: dict[str, Any] = {
                "name": name,
                "version": version,
                "state": "READY" if holders else "UNAVAILABLE",
            }
            if not holders:
                row["reason"] = gw.registry.unavailable_reason(name, version)
            out.append(row)
    return out


@router.post("/models/{model}/load")
async def load(model: str, request: Request) -> dict[str, Any]:
    """``{"parameters": {"version": "2"}}`` (default: the production version)."""
    gw: Gateway = gateway_of(request)
    version = optional_str(await _parameters(request), "version") or gw.catalog.production(model)
    if version is None:
        raise BadRequest(f"model {model!r} has no production version: name one in parameters.version")
    gw.catalog.get_version(model, version)  # 404 for an unknown model or version
    return await gw.swaps.load(model, version)


@router.post("/models/{model}/unload")
async def unload(model: str, request: Request) -> dict[str, Any]:
    gw: Gateway = gateway_of(request)
    await _parameters(request)
    gw.catalog.get_model(model)  # 404 for an unknown model
    return await gw.swaps.unload(model)
