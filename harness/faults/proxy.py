"""An in-path TCP fault proxy (Toxiproxy's semantics): in the test process on the local backend, in a
small container per worker link on docker (:mod:`harness.faults.proxy_server`).

One :class:`FaultProxy` listens on 127.0.0.1 and forwards every connection to one upstream address.
Neither end is told anything: faults are real TCP behaviour on the link.

Modes (Toxiproxy equivalent in brackets):

- ``pass``: forward bytes unchanged.
- ``blackhole`` [``timeout`` with 0]: accept connections but hold all data; nothing is forwarded,
  nothing is closed, until the mode changes. Existing connections stall too.
- ``reset`` [``reset_peer``]: every new connection, and every open one, is closed with a TCP RST.
- ``down`` [proxy disabled]: the listener is closed, so connecting is refused.

``latency`` (+ ``jitter``) [``latency``] delays each chunk in either direction and combines with
``pass``; ``bandwidth`` [``bandwidth``] caps throughput in bytes/s.

The proxy runs an asyncio loop in a daemon thread so it can serve while the test thread blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass

MODES = ("pass", "blackhole", "reset", "down")


@dataclass
class LinkFaults:
    mode: str = "pass"
    latency_s: float = 0.0
    jitter_s: float = 0.0
    bandwidth_bps: int = 0  # 0 = unlimited


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port`` with injectable faults."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_port: int = 0,
        name: str = "",
        listen_host: str = "127.0.0.1",  # 0.0.0.0 only inside a container (harness.faults.proxy_server)
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.name = name or f"proxy->{upstream_host}:{upstream_port}"
        self.faults = LinkFaults()
        self._listen_port = listen_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._released = asyncio.Event()  # set while data may flow (not blackholed)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._open_listener())
        self._call(self._set_flow(True))
        self._started = True
        return self

    @property
    def port(self) -> int:
        return self._listen_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listen_port}"

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # -- faults ------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; expected one of {MODES}")
        self._call(self._apply_mode(mode))

    def set_latency(self, latency_s: float, jitter_s: float = 0.0) -> None:
        self.faults.latency_s, self.faults.jitter_s = latency_s, jitter_s

    def set_bandwidth(self, bytes_per_second: int) -> None:
        self.faults.bandwidth_bps = bytes_per_second

    def heal(self) -> None:
        """Back to a clean link: pass mode, no latency, no bandwidth cap."""
        self.set_latency(0.0)
        self.set_bandwidth(0)
        self.set_mode("pass")

    # -- internals ---------------------------------------------------------------------------
    def _call(self, coro):  # run a coroutine on the proxy loop and wait for it
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _set_flow(self, flowing: bool) -> None:
        if flowing:
            self._released.set()
        else:
            self._released.clear()

    async def _open_listener(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.listen_host, self._listen_port, reuse_address=True
        )
        self._listen_port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _apply_mode(self, mode: str) -> None:
        previous, self.faults.mode = self.faults.mode, mode
        await self._set_flow(mode != "blackhole")
        if mode == "down":
            await self._close_listener()
            for writer in list(self._writers):
                _abort(writer)
        elif previous == "down":
            await self._open_listener()
        if mode == "reset":
            for writer in list(self._writers):
                _abort(writer)

    async def _shutdown(self) -> None:
        self._released.set()
        await self._close_listener()
        for writer in list(self._writers):
            _abort(writer)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.faults.mode == "reset":
            _abort(client_writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _abort(client_writer)  # upstream refused: the client sees a reset, as through a real link
            return
        self._writers.update((client_writer, up_writer))
        try:
            await asyncio.gather(
                self._pipe(client_reader, up_writer),
                self._pipe(up_reader, client_writer),
                return_exceptions=True,
            )
        finally:
            for writer in (client_writer, up_writer):
                self._writers.discard(writer)
                with contextlib.suppress(Exception):
                    writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:  # this side was reset (e.g. its process was killed with data unread)
                await self._released.wait()  # a blackholed link drops the reset too, until it heals
                _abort(writer)  # pass the reset on, as a real link would: the other end must not hang
                return
            await self._released.wait()  # blackhole: hold the data, keep the socket open
            if not data:
                with contextlib.suppress(Exception):
                    writer.write_eof()
                return
            delay = self.faults.latency_s
            if delay or self.faults.jitter_s:
                delay += random.uniform(-self.faults.jitter_s, self.faults.jitter_s)
                await asyncio.sleep(max(0.0, delay))
            if self.faults.bandwidth_bps:
                await asyncio.sleep(len(data) / self.faults.bandwidth_bps)
            await self._released.wait()
            writer.write(data)
            await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN, as Toxiproxy's reset_peer does."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(Exception):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()
