"""The trainer's HTTP API: health, latest drift verdicts, retraining runs."""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from sut.errors import install_error_handlers
from sut.trainer.monitor import DriftMonitor


def create_app(monitor: DriftMonitor, interval: float) -> FastAPI:
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = threading.Thread(
            target=monitor.run_forever, args=(interval, stop), name="drift-monitor", daemon=True
        )
        thread.start()
        yield
        stop.set()
        thread.join(timeout=interval + 5)

    app = FastAPI(title="sut trainer", lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/v2/health/live")
    def live() -> dict:
        return {"live": True}

    @app.get("/drift/{model}")
    def drift(model: str):
        verdict = monitor.verdicts.get(model)
        if verdict is None:
            return JSONResponse({"error": f"no drift verdict for model {model!r} yet"}, status_code=404)
        return verdict

    @app.get("/runs")
    def runs(model: str | None = None) -> list[dict]:
        return monitor.runs.list(model)

    return app
