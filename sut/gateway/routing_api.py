"""Admin API of versioning and routing (behind the admin token, like the rest of ``/admin``).

- ``GET|PUT|DELETE /admin/models/{m}/policy``      the routing policy (PUT: the policy + "reason"?)
- ``POST /admin/models/{m}/promote``                 ``{"version", "reason"?}``: production, policy ends
- ``GET|PUT|DELETE /admin/models/{m}/alert``       the emergency-rollback alert rule
- ``GET /admin/models/{m}/shadow``                   the shadow comparison report
- ``POST /admin/models/{m}/versions/{v}/load``       keep the version loaded on every worker (multi-version)
- ``POST /admin/models/{m}/versions/{v}/unload``     unload it everywhere
- ``GET /admin/models/{m}/versions/{v}/lineage``     parent, ancestors, children, descendants
- ``GET /admin/clock``                               the clock the time rules read

Every change is audited with its actor (the admin token's name, ``admin``) and the reason given.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from sut.errors import ApiError
from sut.gateway import lineage
from sut.gateway.admin import actor_of, gateway_of, json_object, require_token
from sut.gateway.versioning import Versioning
from sut.protocol import BadRequest

router = APIRouter(prefix="/admin", dependencies=[Depends(require_token)])


def versioning_of(request: Request) -> Versioning:
    return gateway_of(request).versioning


def _reason(payload: dict[str, Any]) -> str | None:
    reason = payload.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("'reason' must be a string")
    return reason


def _policy_view(v: Versioning, model: str) -> dict[str, Any]:
    config = v.config(model)
    policy = config.get("policy")
    compiled = v.policies.compiled(model)
    if policy is not None and compiled is not None and compiled.kind == "canary":
        live = {"status": compiled.status, "stage": compiled.stage, "share": compiled.share}
        # the controller acts in memory first, then stores the new state with its judgment
        stored = (policy.get("status"), policy.get("stage")) == (compiled.status, compiled.stage)
        policy = {**policy, **live, "stored": stored}
    return {
        "model": model,
        "production": v.catalog.production(model),
        "policy": policy,
        "alert": config.get("alert"),
        "pinned": config.get("pinned", []),
        "versions_in_use": sorted(v.policies.versions_in_use(model)),
    }


@router.get("/models/{model}/policy")
async def get_policy(model: str, request: Request) -> dict[str, Any]:
    return _policy_view(versioning_of(request), model)


@router.put("/models/{model}/policy")
async def put_policy(model: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    payload = await json_object(request)
    reason = _reason(payload)
    policy, previous = await v.set_policy(model, {k: val for k, val in payload.items() if k != "reason"})
    await v.catalog.audit(
        "set_policy",
        model,
        {"actor": actor_of(request), "reason": reason, "policy": policy, "previous": previous},
    )
    return _policy_view(v, model)


@router.delete("/models/{model}/policy")
async def delete_policy(model: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    previous = await v.clear_policy(model)
    reason = request.query_params.get("reason")
    await v.catalog.audit(
        "clear_policy", model, {"actor": actor_of(request), "reason": reason, "previous": previous}
    )
    return _policy_view(v, model)


@router.post("/models/{model}/promote")
async def promote(model: str, request: Request) -> dict[str, Any]:
    """The winner of an A/B test (or any version) becomes production and the policy ends: from then on only
    it answers. The other versions of the policy are unloaded."""
    v = versioning_of(request)
    payload = await json_object(request)
    version = payload.get("version")
    if version is None:
        raise BadRequest("missing 'version' to promote")
    reason = _reason(payload)
    actor = actor_of(request)
    swap = await gateway_of(request).swaps.swap(model, version, action="promote", actor=actor, reason=reason)
    previous = await v.clear_policy(model)
    await v.catalog.audit(
        "clear_policy", model, {"actor": actor, "reason": f"promoted {version}", "previous": previous}
    )
    return {**_policy_view(v, model), "swap": swap}


@router.get("/models/{model}/alert")
async def get_alert(model: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    return {
        "model": model,
        "alert": v.config(model).get("alert"),
        "last_fired": v.alerts.last_fired.get(model),
    }


@router.put("/models/{model}/alert")
async def put_alert(model: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    payload = await json_object(request)
    reason = _reason(payload)
    rule = await v.set_alert(model, {k: val for k, val in payload.items() if k != "reason"})
    await v.catalog.audit("set_alert", model, {"actor": actor_of(request), "reason": reason, "rule": rule})
    return {"model": model, "alert": rule, "last_fired": v.alerts.last_fired.get(model)}


@router.delete("/models/{model}/alert")
async def delete_alert(model: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    previous = await v.clear_alert(model)
    await v.catalog.audit("clear_alert", model, {"actor": actor_of(request), "previous": previous})
    return {"model": model, "alert": None}


@router.get("/models/{model}/shadow")
async def shadow_report(model: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    policy = v.config(model).get("policy")
    if policy is not None and policy["kind"] == "shadow":
        primary = policy["primary"] or v.catalog.production(model)
        report = v.shadow.report(model, primary, policy["shadow"], policy["tolerance"])
        return {"model": model, "active": True, **report.as_dict()}
    last = v.shadow.reports.get(model)
    if last is None:
        raise ApiError(
            f"model {model!r} has no shadow policy and never had one since the gateway started", 404
        )
    return {"model": model, "active": False, **last.as_dict()}


@router.post("/models/{model}/versions/{version}/load")
async def load_version(model: str, version: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    loaded = await v.pin(model, version)
    await v.catalog.audit(
        "load_version", model, {"actor": actor_of(request), "version": version, "loaded": loaded}
    )
    return {"model": model, "version": version, "loaded": loaded, "pinned": v.config(model).get("pinned", [])}


@router.post("/models/{model}/versions/{version}/unload")
async def unload_version(model: str, version: str, request: Request) -> dict[str, Any]:
    v = versioning_of(request)
    results = await v.unpin(model, version)
    await v.catalog.audit(
        "unload_version", model, {"actor": actor_of(request), "version": version, "workers": results}
    )
    failed = [r for r in results if r["status"] != 200]
    if failed:
        raise ApiError(f"unloading model {model!r} version {version!r} failed on {failed}", 502)
    return {"model": model, "version": version, "workers": results}


@router.get("/models/{model}/versions/{version}/lineage")
async def version_lineage(model: str, version: str, request: Request) -> dict[str, Any]:
    catalog = gateway_of(request).catalog
    catalog.get_version(model, version)
    return lineage.lineage(catalog.get_model(model), version)


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    return versioning_of(request).clock.as_dict()
