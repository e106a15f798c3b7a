"""The gateway's FastAPI application: V2 front door, worker registry endpoints, admin API, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

import sut
from sut.errors import ApiError, NotFound, Unavailable, install_error_handlers
from sut.gateway import admin, auth, feature_log_api, provider_api, repository_api, routing_api
from sut.gateway.catalog import Catalog
from sut.gateway.catalog_store import open_store
from sut.gateway.failover import Failover
from sut.gateway.feature_log import FeatureLog
from sut.gateway.metrics import GatewayMetrics
from sut.gateway.registry import Worker, WorkerRegistry, parse_models
from sut.gateway.routing import Router
from sut.gateway.swap import SwapCoordinator
from sut.gateway.versioning import Versioning
from sut.protocol import BadRequest, parse_infer_request, parse_json
from sut.token_source import TokenSource, new_token

log = logging.getLogger("sut.gateway")
POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

VERSION_HEADER = "x-model-version"  # on every inference answer, errors included


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    port: int
    data_dir: Path
    artifact_root: Path
    admin_token: str
    db: str | None = None
    heartbeat_interval: float = 1.0
    expiry_misses: int = 3
    upstream_timeout: float = 5.0
    db_check_interval: float = 0.5  # seconds between checks of the catalog database (see catalog_recovery)
    join_token: TokenSource | None = None  # workers' credential (required; see sut.gateway.auth)
    join_token_overlap: float = 60.0  # seconds the previous join token stays valid after a rotation
    failover_audit_limit: int = 1000  # entries of the provider lock's audit trail (oldest dropped, counted)
    clock_offset_s: float = 0.0  # added to the system clock by the time rules (see sut.gateway.clock)

    @property
    def public_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class Gateway:
    """Everything the endpoints share, created once per app."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.catalog = Catalog(open_store(config.db, config.data_dir), config.artifact_root)
        self.catalog.load()
        self.feature_log = FeatureLog.open(config.db, config.data_dir)  # served inputs (drift)
        self.registry = WorkerRegistry(config.heartbeat_interval, config.expiry_misses)
        self.router = Router(self.registry, self.metrics, config.upstream_timeout, self._worker_failed)
        self.swaps = SwapCoordinator(
            self.catalog,
            self.registry,
            self.router,
            load_timeout=max(30.0, config.upstream_timeout),
            drain_timeout=config.upstream_timeout + 1.0,
        )
        self.versioning = Versioning(self, config.clock_offset_s)  # policies, canary, shadow, alerts
        self._background: set[asyncio.Task[None]] = set()
        # the provider lock of models served by several providers; restored from the catalog
        self.failover = Failover(
            self.router,
            self.registry,
            self.catalog,
            self.metrics,
            audit_limit=config.failover_audit_limit,
            startup_grace_s=self.registry.expiry_seconds,  # until the workers have registered again
        )
        self.failover.load()
        if config.join_token is None:
            raise ValueError("a join token is required (--join-token-file or SUT_JOIN_TOKEN)")
        self.admin_digest = auth.digest(config.admin_token)
        self.join_tokens = auth.JoinTokens(
            config.join_token, config.join_token_overlap, self._join_rotated, forbidden=self.admin_digest
        )
        self.auth_audit = auth.AuditBudget()

    def _join_rotated(self, rotation: auth.Rotation) -> None:
        details = {"rotations": rotation.rotations, "previous_valid_until": rotation.previous_valid_until}
        with contextlib.suppress(RuntimeError):  # no running loop: nobody to audit for (tests)
            self.audit_later("join_token_rotated", None, details)

    def audit_later(self, action: str, model: str | None, details: dict[str, Any]) -> None:
        """Record worker churn without making the worker's call wait for the database."""
        task = asyncio.get_running_loop().create_task(self.catalog.audit_best_effort(action, model, details))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _worker_failed(self, worker: Worker, reason: str) -> None:
        self.audit_later("worker_unhealthy", None, {"worker": worker.id, "url": worker.url, "reason": reason})

    async def expiry_loop(self) -> None:
        period = max(0.05, min(self.config.heartbeat_interval / 2, 1.0))
        while True:
            await asyncio.sleep(period)
            for w in self.registry.expire():
                log.warning(
                    "worker %s (%s) expired after %d missed heartbeats",
                    w.id,
                    w.url,
                    self.registry.expiry_misses,
                )
                self.audit_later("worker_expired", None, {"worker": w.id, "url": w.url, "name": w.name})

    async def close(self) -> None:
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 2.0)
        await self.failover.close()
        await self.versioning.close()
        await self.router.close()
        await asyncio.to_thread(self.feature_log.close)
        self.catalog.store.close()


def create_app(config: GatewayConfig) -> FastAPI:
    gateway = Gateway(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        expiry = asyncio.create_task(gateway.expiry_loop())
        db_watch = asyncio.create_task(gateway.catalog.guard.watch(config.db_check_interval))
        monitor = asyncio.create_task(gateway.failover.run())
        gateway.versioning.start()
        log.info("gateway listening on %s", config.public_url)
        try:
            yield
        finally:
            for task in (expiry, db_watch, monitor):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.close()

    app = FastAPI(title="sut gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway
    install_error_handlers(app)
    _add_v2_routes(app, gateway)  # first: routes are matched in order and inference is the hot path
    _add_registry_routes(app, gateway)
    app.include_router(admin.router)
    app.include_router(repository_api.router)
    app.include_router(provider_api.router)
    app.include_router(routing_api.router)
    app.include_router(feature_log_api.labels_router)
    app.include_router(feature_log_api.admin_router)

    @app.get("/metrics")
    async def metrics() -> Response:
        sizes = {
            (name, v): rec.size_bytes
            for name, e in gateway.catalog.models.items()
            for v, rec in e.versions.items()
        }
        text = gateway.metrics.render(gateway.registry, sizes)
        return Response(text, media_type="text/plain; version=0.0.4")

    return app


def _add_v2_routes(app: FastAPI, gw: Gateway) -> None:
    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        serving = [w.id for w in gw.registry.workers.values() if w.healthy and w.models]
        if serving:
            return JSONResponse({"ready": True, "workers": serving})
        reason = "no healthy worker serves a model" if gw.registry.workers else "no worker is registered"
        return JSONResponse({"ready": False, "error": f"gateway not ready: {reason}"}, status_code=503)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "sut-gateway", "version": sut.__version__, "extensions": ["model_repository"]}

    async def metadata(model: str, version: str | None) -> Response:
        resolved = gw.catalog.resolve(model, version)
        path = f"/v2/models/{model}/versions/{resolved}"
        upstream = await gw.router.get(model, resolved, path)
        if upstream.status != 200 or version is not None:
            return Response(upstream.body, status_code=upstream.status, media_type="application/json")
        body = json.loads(upstream.body)
        body["versions"] = list(gw.catalog.get_model(model).versions)
        return JSONResponse(body)

    def model_ready(model: str, version: str | None) -> JSONResponse:
        resolved = gw.catalog.resolve(model, version)
        holders = [w.id for w in gw.registry.holders(model, resolved) if w.healthy]
        body = {"name": model, "version": resolved, "ready": bool(holders)}
        if not holders:
            body["error"] = (
                f"model {model!r} version {resolved!r}: {gw.registry.unavailable_reason(model, resolved)}"
            )
        return JSONResponse(body, status_code=200 if holders else 503)

    async def infer(model: str, version: str | None, request: Request) -> Response:
        body = await request.body()
        # resolve and enter the in-flight count with no await in between: a swap that flips the
        # alias meanwhile then always sees this request when it waits for the old version to drain
        try:
            choice = gw.versioning.choose(model, version)  # explicit version, else the model's policy
            resolved = choice.version
            if model in gw.swaps.unloaded:
                raise Unavailable(f"model {model!r} is unloaded: load it through the repository API first")
        except ApiError as exc:
            gw.metrics.observe(model, version or "", exc.status, 0.0)
            raise
        named = {VERSION_HEADER: resolved}  # every answer names the version that produced it
        key = (model, resolved)
        gw.router.in_flight.enter(key)  # accepted: a swap or an unload now waits for this request
        try:
            try:
                parsed = parse_infer_request(parse_json(body))
            except ApiError as exc:
                gw.metrics.observe(model, version or "", exc.status, 0.0)
                raise
            try:
                upstream = await gw.failover.infer(model, resolved, body)  # the provider lock, if any
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=named)
        finally:
            gw.router.in_flight.leave(key)
        if upstream.status == 200:  # queued only: written off the event loop in batches
            gw.feature_log.record(parsed.id, model, resolved, parsed.inputs[0].array)
        gw.versioning.answered(model, choice, body, upstream)  # a shadowed request's copy leaves now
        headers = {**named, **({"X-Provider": upstream.provider} if upstream.provider else {})}
        return Response(
            upstream.body, status_code=upstream.status, media_type="application/json", headers=headers
        )

    @app.post("/v2/models/{model}/infer")
    async def infer_default(model: str, request: Request) -> Response:
        return await infer(model, None, request)

    @app.post("/v2/models/{model}/versions/{version}/infer")
    async def infer_version(model: str, version: str, request: Request) -> Response:
        return await infer(model, version, request)

    @app.get("/v2/models/{model}")
    async def model_metadata(model: str) -> Response:
        return await metadata(model, None)

    @app.get("/v2/models/{model}/versions/{version}")
    async def version_metadata(model: str, version: str) -> Response:
        return await metadata(model, version)

    @app.get("/v2/models/{model}/ready")
    async def ready_model(model: str) -> JSONResponse:
        return model_ready(model, None)

    @app.get("/v2/models/{model}/versions/{version}/ready")
    async def ready_version(model: str, version: str) -> JSONResponse:
        return model_ready(model, version)


def _add_registry_routes(app: FastAPI, gw: Gateway) -> None:
    @app.post("/internal/workers/register")
    async def register(request: Request) -> dict[str, Any]:
        auth.require_join(request, "register")
        payload = await admin.json_object(request)
        url = payload.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequest("'url' must be the worker's base URL, e.g. http://127.0.0.1:8001")
        name = payload.get("name") or ""
        if not isinstance(name, str):
            raise BadRequest("'name' must be a string")
        pool = payload.get("pool") or "default"
        if not isinstance(pool, str) or not POOL_NAME.match(pool):
            raise BadRequest("'pool' must be a short name: letters, digits, '.', '_' or '-'")
        try:
            models = parse_models(payload.get("models"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        for old in [w for w in gw.registry.workers.values() if w.url == url.rstrip("/")]:
            gw.registry.deregister(old.id)  # the same address registering again: the old process is gone
            gw.audit_later("worker_replaced", None, {"worker": old.id, "url": old.url})
        worker_token = new_token()  # answered once; only its digest is kept
        worker = gw.registry.register(url, name, models, auth.digest(worker_token), pool)
        log.info("worker %s registered: %s (%s)", worker.id, worker.url, worker.name)
        gw.audit_later("worker_registered", None, {"worker": worker.id, "url": worker.url, "name": name})
        return {
            "id": worker.id,
            "worker_token": worker_token,
            "heartbeat_interval": gw.config.heartbeat_interval,
            "assignments": gw.swaps.assignments(),
        }

    @app.post("/internal/workers/{worker_id}/heartbeat")
    async def heartbeat(worker_id: str, request: Request) -> dict[str, Any]:
        auth.require_join(request, "heartbeat")
        known = gw.registry.workers.get(worker_id)
        if known is None:
            raise NotFound(f"worker {worker_id!r} is not registered (expired or unknown): register again")
        auth.require_owner(request, known, "heartbeat")
        body = await request.body()
        payload = parse_json(body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise BadRequest("heartbeat body must be a JSON object")
        try:
            models = parse_models(payload["models"]) if "models" in payload else None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        memory = payload.get("memory_used")
        if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool) or memory < 0):
            raise BadRequest("'memory_used' must be a non-negative integer")
        worker = gw.registry.heartbeat(worker_id, models, memory)
        if worker is None:
            raise NotFound(f"worker {worker_id!r} is not registered (expired or unknown): register again")
        return {"id": worker.id, "healthy": worker.healthy}

    @app.delete("/internal/workers/{worker_id}")
    async def deregister(worker_id: str, request: Request) -> dict[str, Any]:
        auth.require_join(request, "deregister")
        known = gw.registry.workers.get(worker_id)
        if known is None:
            raise NotFound(f"worker {worker_id!r} is not registered")
        auth.require_owner(request, known, "deregister")
        worker = gw.registry.deregister(worker_id)
        if worker is None:
            raise NotFound(f"worker {worker_id!r} is not registered")
        log.info("worker %s deregistered", worker.id)
        gw.audit_later("worker_deregistered", None, {"worker": worker.id, "url": worker.url})
        return {"id": worker.id, "deregistered": True}
