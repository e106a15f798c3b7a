"""The worker's HTTP API: Open Inference Protocol (V2) + repository extension + status + metrics.

Inference, loads and unloads run in threads, so a slow request never blocks health checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

import sut
from sut import protocol
from sut.errors import DEFAULT_MAX_BODY_BYTES, ApiError, Unavailable, install_error_handlers
from sut.protocol import BadRequest
from sut.token_source import TokenSource
from sut.worker.metrics import WorkerMetrics
from sut.worker.model_store import LoadedVersion, ModelStore
from sut.worker.registration import Registrar
from sut.worker.shedding import Shedding, require_join_token

log = logging.getLogger("sut.worker")

PLATFORM = "onnxruntime_onnx"
UNLOAD_WAIT_SECONDS = 120.0  # after this an unload stops waiting; running requests keep their session
INFER_THREADS = 16  # sessions use one intra-op thread each; requests run side by side
ADMIN_THREADS = 4  # loads and unloads: never queued behind slow inferences


@dataclass
class WorkerConfig:
    artifact_root: Path
    name: str = "worker"
    gateway_url: str = ""  # empty: run alone, no registration
    memory_budget: int = 0
    grace_period: float = 10.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    join_token: TokenSource | None = None  # sent to the gateway; None: the gateway will refuse us
    pool: str = "default"  # the pool of workers the gateway lists us in (a provider of a model)


class WorkerRuntime:
    """Everything one worker holds: its models, metrics, registration and drain state."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.store = ModelStore(config.artifact_root, config.memory_budget)
        self.metrics = WorkerMetrics(self.store)
        # Own thread pools, not the loop's default one: asyncio.run() joins the default pool at exit,
        # which would make a SIGTERM wait for inferences past the grace period.
        self.infer_pool = ThreadPoolExecutor(INFER_THREADS, thread_name_prefix="infer")
        self.admin_pool = ThreadPoolExecutor(ADMIN_THREADS, thread_name_prefix="admin")
        self.registrar = None
        if config.gateway_url and config.join_token is None:
            log.warning("no join token (--join-token-file or SUT_JOIN_TOKEN): the gateway will refuse us")
        if config.gateway_url:
            self.registrar = Registrar(
                config.gateway_url, config.name, self.store, self.admin_pool, config.join_token, config.pool
            )
        self.draining = False
        self.shedding = Shedding()  # an operator's 429/503 for every inference (see sut.worker.shedding)
        self.active_infers = 0
        self._drained = asyncio.Event()

    def ready(self) -> bool:
        return not self.draining and bool(self.store.loaded())

    def start_registration(self, advertise_url: str) -> None:
        if self.registrar is not None:
            self.registrar.start(advertise_url)

    def infer_started(self) -> None:
        if self.draining:
            raise Unavailable("worker is draining (shutting down) and takes no new inference requests")
        self.shedding.refuse_if_shedding(self.config.name)
        self.active_infers += 1

    def infer_finished(self) -> None:
        self.active_infers -= 1
        if self.draining and self.active_infers == 0:
            self._drained.set()

    async def drain(self) -> None:
        """SIGTERM: refuse new inferences, deregister, then wait (bounded) for those in flight."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: %d inference request(s) in flight", self.active_infers)
        if self.registrar is not None:
            await self.registrar.deregister()
        if self.active_infers:
            try:
                await asyncio.wait_for(self._drained.wait(), self.config.grace_period)
                log.info("drained: all in-flight requests finished")
            except TimeoutError:
                log.warning("grace period over with %d request(s) still in flight", self.active_infers)

    def busy(self) -> bool:
        """Inferences, loads or unloads still running in threads."""
        return bool(self.active_infers or self.store.in_flight() or self.store.loading())

    async def close(self) -> None:
        if self.registrar is not None:
            await self.registrar.deregister()

    def status(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "ready": self.ready(),
            "draining": self.draining,
            "memory_budget": self.store.memory_budget,
            "memory_used": self.store.memory_used(),
            "models": [lv.describe() for lv in self.store.all_in_memory()],
            "worker_id": self.registrar.worker_id if self.registrar else None,
            "in_flight": self.active_infers,
            "pool": self.config.pool,
            "shedding": self.shedding.as_dict(),
        }


async def in_thread(pool: Executor, func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(pool, func, *args)


class NonFiniteOutput(ApiError):
    """The model computed NaN or infinity: a broken model, never an answer to pass on (500)."""

    status = 500


def _check_finite(model: str, version: str, outputs: dict[str, Any]) -> None:
    for name, array in outputs.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise NonFiniteOutput(
                f"model '{model}' version '{version}' computed {bad} non-finite value(s) (NaN/inf) "
                f"in output {name!r}: refusing to answer with them"
            )


def _infer_sync(store: ModelStore, model: str, version: str | None, body: bytes) -> tuple[str, bytes, float]:
    """(version that answered, the answer, seconds still to wait before sending it)."""
    started = time.perf_counter()
    request = protocol.parse_infer_request(protocol.parse_json(body))
    with store.acquire(model, version) as lv:
        feeds = protocol.check_inputs(request, lv.inputs, model=model, version=lv.version)
        names = protocol.select_outputs(
            request, [o.name for o in lv.outputs], model=model, version=lv.version
        )
        try:
            outputs = lv.run(feeds, names)
        except InvalidArgument as exc:
            raise BadRequest(f"model '{model}' version '{lv.version}' rejected the input: {exc}") from None
        _check_finite(model, lv.version, outputs)
        wait = lv.min_latency_s - (time.perf_counter() - started)
    answer = protocol.build_response(model=model, version=lv.version, request_id=request.id, outputs=outputs)
    return lv.version, json.dumps(answer).encode(), wait


def _metadata(model: str, versions: list[str], lv: LoadedVersion) -> dict[str, Any]:
    return {
        "name": model,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": [s.as_dict() for s in lv.inputs],
        "outputs": [s.as_dict() for s in lv.outputs],
    }


async def _json_body(request: Request, *, required: bool) -> dict[str, Any]:
    body = await request.body()
    if not body.strip() and not required:
        return {}
    payload = protocol.parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    return payload


def _parameters(payload: dict[str, Any]) -> dict[str, Any]:
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest("'parameters' must be an object")
    return params


def _opt_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"parameters.{key} must be a string")
    return str(value)


def create_app(config: WorkerConfig, runtime: WorkerRuntime | None = None) -> FastAPI:
    worker = runtime or WorkerRuntime(config)
    store = worker.store

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await worker.close()

    app = FastAPI(
        title="sut worker", version=sut.__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.worker = worker
    install_error_handlers(app, max_body_bytes=config.max_body_bytes)

    @app.get("/v2/health/live")
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> dict:
        if worker.draining:
            raise Unavailable("worker is draining (shutting down)")
        if not store.loaded():
            raise Unavailable("worker has no model loaded")
        if worker.shedding.status == 503:
            raise Unavailable(f"worker sheds load: {worker.shedding.reason}")
        return {"ready": True}

    @app.get("/v2")
    async def server_metadata() -> dict:
        return {"name": "sut-worker", "version": sut.__version__, "extensions": ["model_repository"]}

    @app.get("/v2/models/{model}")
    async def model_metadata(model: str) -> dict:
        return _metadata(model, store.versions_of(model), store.resolve(model, None))

    @app.get("/v2/models/{model}/versions/{version}")
    async def version_metadata(model: str, version: str) -> dict:
        return _metadata(model, [version], store.resolve(model, version))

    @app.get("/v2/models/{model}/ready")
    async def model_ready(model: str) -> dict:
        lv = store.resolve(model, None)
        return {"name": model, "version": lv.version, "ready": True}

    @app.get("/v2/models/{model}/versions/{version}/ready")
    async def version_ready(model: str, version: str) -> dict:
        store.resolve(model, version)
        return {"name": model, "version": version, "ready": True}

    async def infer(model: str, version: str | None, request: Request) -> Response:
        started = time.perf_counter()
        status, answered_version = 200, version or ""
        try:
            worker.infer_started()
            try:
                body = await request.body()
                answered_version, payload, wait = await in_thread(
                    worker.infer_pool, _infer_sync, store, model, version, body
                )
                if wait > 0:  # a model declaring a minimum latency: wait without holding a thread
                    await asyncio.sleep(wait)
            finally:
                worker.infer_finished()
            return Response(payload, media_type="application/json")
        except ApiError as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            worker.metrics.observe(model, answered_version, status, time.perf_counter() - started)

    @app.post("/v2/models/{model}/infer")
    async def infer_default(model: str, request: Request) -> Response:
        return await infer(model, None, request)

    @app.post("/v2/models/{model}/versions/{version}/infer")
    async def infer_version(model: str, version: str, request: Request) -> Response:
        return await infer(model, version, request)

    @app.post("/v2/repository/index")
    async def repository_index() -> list:
        return store.index()

    @app.post("/v2/repository/models/{model}/load")
    async def load(model: str, request: Request) -> dict:
        params = _parameters(await _json_body(request, required=True))
        version = _opt_str(params, "version")
        if not version:
            raise BadRequest("parameters.version is required to load a model")
        uri = _opt_str(params, "artifact_uri") or f"{model}/{version}/model.onnx"
        sha256 = _opt_str(params, "sha256")
        result = await in_thread(worker.admin_pool, store.load, model, version, uri, sha256)
        return {
            "name": model,
            "version": version,
            "state": "READY",
            "artifact_uri": uri,
            "sha256": result.version.sha256,
            "size_bytes": result.version.size_bytes,
            "already_loaded": result.already_loaded,
            "replaced": result.replaced,
            "load_seconds": round(result.seconds, 4),
        }

    @app.post("/v2/repository/models/{model}/unload")
    async def unload(model: str, request: Request) -> dict:
        version = _opt_str(_parameters(await _json_body(request, required=False)), "version")
        started = time.perf_counter()
        names = await in_thread(worker.admin_pool, store.unload, model, version, UNLOAD_WAIT_SECONDS)
        return {"name": model, "unloaded": names, "waited_s": round(time.perf_counter() - started, 4)}

    @app.get("/worker/status")
    async def status() -> dict:
        return worker.status()

    @app.post("/worker/shed")
    async def shed(request: Request) -> dict:
        require_join_token(request, config.join_token)
        worker.shedding.set(await _json_body(request, required=True))
        log.warning("shedding: %s", worker.shedding.as_dict() or "off")
        return {"shedding": worker.shedding.as_dict()}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(worker.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def root() -> JSONResponse:
        return JSONResponse({"name": "sut-worker", "see": ["/v2", "/worker/status", "/metrics"]})

    return app
