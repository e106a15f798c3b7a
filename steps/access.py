"""Access: only the admin token opens the admin API, on every route, and a refused call changes nothing.

Every route of the reference gateway's admin API (docs/architecture.md: ``/admin/...`` and the
repository extension under ``/v2/repository``) is called with each kind of wrong credential, with a
body that WOULD act (swap to another version, register one, unload the model), so that a gateway which
lets the call through is seen doing it: the catalog, the production version, the audit trail and what
the workers hold are compared before and after, and the model must still answer with its outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from harness.drivers.v2 import Answer
from harness.evidence import judged
from harness.steps_registry import then, when
from harness.world import World
from steps._support import wrong_outputs

#: What every way of presenting a credential sends: name -> (headers, query string) for the token.
CREDENTIALS = (
    "no token",
    "an empty token",
    "a wrong token",
    "the admin token cut short",
    "the admin token with a character added",
    "the admin token in upper case",
    "the admin token under another scheme",
    "the admin token in the query string",
)
REFUSED = (401, 403)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {model} is the scenario's model
    body: str | None = None  # a JSON template: {model}, {other} (a registered, non-production version), {uri}
    harmless_body: str | None = None  # sent WITH the token to show the route exists (None: not sent)


#: Every admin route of the reference gateway, each with a body that would change something.
ADMIN_ROUTES = (
    Route("GET", "/admin/status", harmless_body=""),
    Route("GET", "/admin/workers", harmless_body=""),
    Route("GET", "/admin/models", harmless_body=""),
    Route("GET", "/admin/models/{model}/versions", harmless_body=""),
    Route("POST", "/admin/models/{model}/versions", '{"version": "99", "artifact_uri": "{uri}"}'),
    Route("POST", "/admin/models/{model}/swap", '{"version": "{other}"}', '{"version": "{production}"}'),
    Route("POST", "/admin/models/{model}/rollback", "{}"),
    Route("GET", "/admin/audit", harmless_body=""),
    Route("GET", "/admin/feature-log?model={model}", harmless_body=""),
    Route("POST", "/v2/repository/index", "{}", "{}"),
    Route(
        "POST",
        "/v2/repository/models/{model}/load",
        '{"parameters": {"version": "{other}"}}',
        '{"parameters": {"version": "{production}"}}',
    ),
    Route("POST", "/v2/repository/models/{model}/unload", "{}"),
)


@dataclass
class Attempt:
    credential: str
    route: Route
    path: str
    answer: Answer


@dataclass
class Snapshot:
    versions: list[tuple[str, str]]  # (version, sha256)
    production: str | None
    audit: list[str]  # the audit entries about the model
    held: list[tuple[str, str]]  # (worker name, version) the gateway lists
    secrets: list[str]  # strings a refused answer must not reveal (hashes, worker URLs)


ATTEMPTS = pytest.StashKey[tuple[str, Snapshot, list[Attempt]]]()


def _credential(kind: str, token: str) -> tuple[dict[str, str], str]:
    """The headers and query string that present ``kind`` of credential."""
    if kind == "no token":
        return {}, ""
    if kind == "an empty token":
        return {"Authorization": "Bearer"}, ""  # a trailing space is not a legal header value
    if kind == "a wrong token":
        return {"Authorization": "Bearer not-the-admin-token"}, ""
    if kind == "the admin token cut short":
        return {"Authorization": f"Bearer {token[:-1]}"}, ""
    if kind == "the admin token with a character added":
        return {"Authorization": f"Bearer {token}x"}, ""
    if kind == "the admin token in upper case":
        return {"Authorization": f"Bearer {token.upper() if token.upper() != token else token.lower()}"}, ""
    if kind == "the admin token under another scheme":
        return {"Authorization": f"Basic {token}"}, ""
    if kind == "the admin token in the query string":
        return {}, f"token={token}&access_token={token}"
    raise AssertionError(f"unknown credential {kind!r}; the steps know: {', '.join(CREDENTIALS)}")


def _kinds(text: str) -> list[str]:
    parts = [p.strip() for p in text.replace(" or ", ", ").replace(" and ", ", ").split(",")]
    kinds = [p for p in parts if p]
    for kind in kinds:
        _credential(kind, "t")  # unknown ones fail here, listing the known ones
    return kinds


def _snapshot(world: World, model: str) -> Snapshot:
    gateway = world.gateway
    versions = sorted((str(v.get("version")), str(v.get("sha256"))) for v in gateway.versions(model))
    production = gateway.production(model)
    audit = [json.dumps(e, sort_keys=True) for e in gateway.audit() if e.get("model") == model]
    workers = gateway.workers()
    held = sorted(
        (str(w.get("name")), str(m.get("version")))
        for w in workers
        for m in w.get("models", [])
        if m.get("name") == model
    )
    secrets = [sha for _, sha in versions] + [str(w.get("url")) for w in workers]
    return Snapshot(versions, production, audit, held, secrets)


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _values(world: World, model: str, snapshot: Snapshot) -> dict[str, str]:
    others = [v for v, _ in snapshot.versions if v != snapshot.production]
    assert others, (
        f"the access checks need a registered version of {model} besides production (to try a swap to it); "
        f"the catalog has {[v for v, _ in snapshot.versions]}"
    )
    uri = next(a.artifact_uri for (m, _), a in world.artifacts.items() if m == model)
    return {"model": model, "other": others[0], "production": str(snapshot.production), "uri": uri}


def _send(world: World, route: Route, path: str, body: str | None, headers: dict[str, str]) -> Answer:
    content = body.encode() if body else None
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    return world.gateway.call(route.method, path, content=content, headers=headers, timeout=60.0)


@when(
    "every admin route is called for {model:w} with {credentials}",
    example="When every admin route is called for demo with no token, a wrong token "
    "or the admin token in the query string",
    needs=("admin",),
)
def call_every_route(world: World, model: str, credentials: str) -> None:
    """Call each route of the admin API (catalog, versions, swap, rollback, audit, feature log, the
    repository's index/load/unload) once per kind of credential, each with a body that would change the
    cluster (a swap to another registered version, a new version, an unload). Kinds: "no token", "an
    empty token", "a wrong token", "the admin token cut short", "the admin token with a character
    added", "the admin token in upper case", "the admin token under another scheme" (Basic), "the admin
    token in the query string"."""
    kinds = _kinds(credentials)
    before = _snapshot(world, model)
    values = _values(world, model, before)
    token = world.reference.admin_token
    attempts = []
    for kind in kinds:
        headers, query = _credential(kind, token)
        for route in ADMIN_ROUTES:
            path = _fill(route.path, values)
            if query:
                path += ("&" if "?" in path else "?") + query
            body = _fill(route.body, values) if route.body else None
            attempts.append(Attempt(kind, route, path, _send(world, route, path, body, headers)))
    world.stash[ATTEMPTS] = (model, before, attempts)


def _attempts(world: World) -> tuple[str, Snapshot, list[Attempt]]:
    attempts = world.stash.get(ATTEMPTS, None)
    assert attempts is not None, "no admin route was called in this scenario (missing 'When every admin ...')"
    return attempts


@then(
    "every call was refused with 401 or 403, revealing nothing",
    example="Then every call was refused with 401 or 403, revealing nothing",
    needs=("admin",),
)
def all_refused(world: World) -> None:
    """Each call got 401 or 403, and its answer names no artifact hash and no worker address."""
    _, before, attempts = _attempts(world)
    judged([a.answer for a in attempts], "answers to admin calls without the right credential")
    unsent = [a for a in attempts if a.answer.status == 0]
    assert not unsent, (
        f"{len(unsent)} calls got no answer at all, e.g. {unsent[0].route.method} {unsent[0].path} with "
        f"{unsent[0].credential}: {unsent[0].answer.error}"
    )
    let_through = [a for a in attempts if a.answer.status not in REFUSED]
    assert not let_through, (
        f"{len(let_through)} of {len(attempts)} admin calls without the right credential were not refused: "
        + "; ".join(
            f"{a.route.method} {a.path.split('?')[0]} with {a.credential} -> {a.answer.status}"
            for a in let_through[:6]
        )
    )
    for attempt in attempts:
        body = attempt.answer.body
        text = body if isinstance(body, str) else json.dumps(body)
        leaked = [s for s in before.secrets if s and s in text]
        assert not leaked, (
            f"{attempt.route.method} {attempt.path} with {attempt.credential} was refused, but its answer "
            f"reveals {leaked[0]!r}: {text[:300]}"
        )


@then(
    "nothing changed: the versions, the production version, the audit trail and what the workers hold",
    example="Then nothing changed: the versions, the production version, the audit trail "
    "and what the workers hold",
    needs=("admin",),
)
def nothing_changed(world: World) -> None:
    """The catalog's versions and hashes, the production version, the model's audit entries and the
    versions the gateway lists on each worker are what they were before the refused calls, and a
    request is still computed by the production version."""
    model, before, _ = _attempts(world)
    after = _snapshot(world, model)
    changes = [
        f"{what}: {old} -> {new}"
        for what, old, new in (
            ("versions", before.versions, after.versions),
            ("production", before.production, after.production),
            ("workers hold", before.held, after.held),
        )
        if old != new
    ]
    new_audit = [e for e in after.audit if e not in before.audit]
    if new_audit:
        changes.append(f"new audit entries {new_audit[:3]}")
    assert not changes, "calls without the right credential changed the cluster: " + "; ".join(changes)
    answer = world.v2.infer(model, seed=17)
    assert answer.ok, f"{model} no longer answers after the refused calls: {answer.status} {answer.error}"
    problem = wrong_outputs(world, model, answer, str(before.production))
    assert problem is None, problem


@then(
    "with the admin token every admin route answers",
    example="Then with the admin token every admin route answers",
    needs=("admin",),
)
def token_opens(world: World) -> None:
    """With the right token, each read route and each route that has a harmless call (a swap or load of
    the production version, the repository index) answers 2xx: the refusals were about the credential,
    not a route that does not exist."""
    model, before, _ = _attempts(world)
    values = _values(world, model, before)
    headers = {"Authorization": f"Bearer {world.reference.admin_token}"}
    failed: list[Any] = []
    for route in ADMIN_ROUTES:
        if route.harmless_body is None:
            continue
        path = _fill(route.path, values)
        answer = _send(world, route, path, _fill(route.harmless_body, values) or None, headers)
        if not answer.ok:
            failed.append(f"{route.method} {path} -> {answer.status} {answer.error}")
    assert not failed, "with the admin token, admin routes did not answer: " + "; ".join(failed)
