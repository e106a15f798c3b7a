"""The admin API (catalog, swap, rollback, status, audit), behind a bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from sut.gateway import auth
from sut.protocol import BadRequest, parse_json

if TYPE_CHECKING:
    from sut.gateway.app import Gateway


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


async def require_token(request: Request) -> None:
    """401 unless ``Authorization: Bearer <the admin token>`` (403 for a join token): see sut.gateway.auth.
    Async on purpose: FastAPI runs a plain ``def`` dependency in a thread, where the refusal's audit
    (a task on the event loop) could not be scheduled."""
    auth.require_admin(request)


async def json_object(request: Request) -> dict[str, Any]:
    payload = parse_json(await request.body())
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    return payload


def optional_str(payload: dict[str, Any], key: str, numbers: bool = True) -> str | None:
    """A string field; version-like fields (``numbers``) may also be sent as integers."""
    value = payload.get(key)
    if value is None:
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string")
    return value


router = APIRouter(prefix="/admin", dependencies=[Depends(require_token)])

ADMIN_ACTOR = "admin"  # the audit trail's actor for changes made with the admin token


@router.get("/status")
async def status(request: Request) -> dict[str, Any]:
    gw = gateway_of(request)
    return {
        "gateway": gw.config.public_url,
        "workers": [w.as_dict() for w in gw.registry.workers.values()],
        "models": [entry.as_dict() for entry in gw.catalog.models.values()],
        "catalog": gw.catalog.guard.health.as_dict(),
        "join_token": gw.join_tokens.status(),  # rotation state; never a token
        "auth_audit_suppressed": gw.auth_audit.suppressed_total,
        "swaps_in_progress": dict(gw.swaps.targets),
        "in_flight": [
            {"model": m, "version": v, "requests": n}
            for (m, v), n in sorted(gw.router.in_flight.counts.items())
        ],
    }


@router.get("/workers")
async def workers(request: Request) -> list[dict[str, Any]]:
    return [w.as_dict() for w in gateway_of(request).registry.workers.values()]


@router.get("/models")
async def models(request: Request) -> list[dict[str, Any]]:
    return [entry.as_dict() for entry in gateway_of(request).catalog.models.values()]


@router.get("/models/{model}/versions")
async def versions(model: str, request: Request) -> list[dict[str, Any]]:
    entry = gateway_of(request).catalog.get_model(model)
    return [rec.as_dict() for rec in entry.versions.values()]


@router.post("/models/{model}/versions", status_code=201)
async def register_version(model: str, request: Request) -> JSONResponse:
    payload = await json_object(request)
    artifact_uri = optional_str(payload, "artifact_uri", numbers=False)
    if artifact_uri is None:
        raise BadRequest("missing 'artifact_uri' (a path relative to the artifact root)")
    rec = await gateway_of(request).catalog.register_version(
        model, optional_str(payload, "version"), artifact_uri, optional_str(payload, "parent_version")
    )
    return JSONResponse({"model": model, **rec.as_dict()}, status_code=201)


@router.post("/models/{model}/swap")
async def swap(model: str, request: Request) -> dict[str, Any]:
    payload = await json_object(request)
    if payload.get("version") is None:
        raise BadRequest("missing 'version' to swap to")
    who = _who(request, payload)
    return await gateway_of(request).swaps.swap(model, payload["version"], **who)


@router.post("/models/{model}/rollback")
async def rollback(model: str, request: Request) -> dict[str, Any]:
    gw = gateway_of(request)
    gw.catalog.get_model(model)
    body = await request.body()
    payload = parse_json(body) if body.strip() else {}
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    return await gw.swaps.rollback(model, **_who(request, payload))


def _who(request: Request, payload: dict[str, Any]) -> dict[str, Any]:
    """The actor (the admin token's name, or what an authentication layer set) and the reason given."""
    reason = payload.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("'reason' must be a string")
    return {"actor": actor_of(request), "reason": reason}


def actor_of(request: Request) -> str:
    """Who made an admin request: the name an authentication layer put on the request, else the admin
    token's name (the gateway has one admin token: ``admin``)."""
    return str(getattr(request.state, "actor", None) or ADMIN_ACTOR)


@router.get("/audit")
async def audit(
    request: Request, model: str | None = None, action: str | None = None, limit: int = Query(1000, ge=1)
) -> list[dict[str, Any]]:
    entries = gateway_of(request).catalog.audit_entries
    picked = [
        e for e in entries if (model is None or e.model == model) and (action is None or e.action == action)
    ]
    return [e.as_dict() for e in picked[-limit:]]
