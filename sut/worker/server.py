"""Uvicorn server with the worker's lifecycle: register once listening, drain on SIGTERM/SIGINT.

Uvicorn's own handler would stop the server at once and then re-raise the signal (exit code -15).
Ours runs the drain first (refuse new inferences, deregister, wait for those in flight within the
grace period) and only then asks uvicorn to exit, so the process ends with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from sut.worker.app import WorkerRuntime

log = logging.getLogger("sut.worker")


class WorkerServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, runtime: WorkerRuntime, advertise_url: str | None) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.advertise_url = advertise_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        port = self.servers[0].sockets[0].getsockname()[1]
        url = self.advertise_url or f"http://{self.config.host}:{port}"
        log.info("worker %s listening on port %d (advertised as %s)", self.runtime.config.name, port, url)
        self.runtime.start_registration(url)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None:
            # A second signal (or one before startup): stop now; SIGINT twice forces it.
            self.should_exit = True
            if self._drain_task is not None and sig == signal.SIGINT:
                self.force_exit = True
            return
        log.info("received %s: draining", signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.runtime.drain()
        except Exception:
            log.exception("drain failed; exiting anyway")
        self.should_exit = True
