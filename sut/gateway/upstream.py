"""A small keep-alive HTTP/1.1 client for the inference hot path (gateway -> worker on plain http).

Why not httpx here: measured on this project's 2-core machines, an ``httpx.AsyncClient`` POST costs
about 1.5-2.5 ms of CPU in the gateway (anyio + httpcore + h11 layers) against about 0.15 ms for a
request written on a pooled asyncio stream. Inference requests are the one path where that matters
(the gateway's overhead target is < 2 ms at p50), so they use this; everything else (repository
load/unload, metadata) keeps using httpx.

Only what the workers speak is supported: ``http://host:port`` and answers with Content-Length or
chunked bodies. A request that fails on a *reused* connection before any answer arrived is sent
again once on a fresh connection (the worker may have closed the idle one); a failure on a fresh
connection raises ``UpstreamConnectionError``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

IDLE_EXPIRY = 4.0  # below uvicorn's 5 s keep-alive timeout, so we rarely reuse a closing connection
MAX_IDLE_PER_HOST = 64
MAX_HEADER_LINES = 100


class UpstreamConnectionError(Exception):
    """The connection failed before a complete answer (refused, reset, closed): safe to retry elsewhere."""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.writer.is_closing() and not self.reader.at_eof() and now - self.idle_since < IDLE_EXPIRY
        )

    def close(self) -> None:
        self.writer.close()


class _ProtocolError(Exception):
    pass


_FAILURES = (OSError, asyncio.IncompleteReadError, _ProtocolError, ValueError)


class UpstreamPool:
    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    @staticmethod
    def supports(base_url: str) -> bool:
        parts = urlsplit(base_url)
        return parts.scheme == "http" and parts.hostname is not None and parts.port is not None

    async def post(self, base_url: str, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``base_url + path``; (status, response body)."""
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        key = (parts.hostname, parts.port)
        request = (
            f"POST {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii") + body
        conn = self._take_idle(key)
        if conn is not None:
            try:
                return await self._exchange(key, conn, request)
            except _FAILURES:
                pass  # no answer at all on a reused connection: it was stale, try a fresh one
        try:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        except OSError as exc:
            raise UpstreamConnectionError(f"connect failed: {_describe(exc)}") from None
        try:
            return await self._exchange(key, _Conn(reader, writer), request)
        except _FAILURES as exc:
            raise UpstreamConnectionError(_describe(exc)) from None

    def _take_idle(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def _exchange(self, key: tuple[str, int], conn: _Conn, request: bytes) -> tuple[int, bytes]:
        answered = False
        try:
            conn.writer.write(request)
            await conn.writer.drain()
            status_line = await conn.reader.readline()
            if not status_line:
                raise ConnectionResetError("connection closed before an answer")
            answered = True
            status, headers = await self._read_head(conn.reader, status_line)
            body = await self._read_body(conn.reader, headers)
        except BaseException as exc:
            conn.close()  # half-used, or cancelled by the deadline: never reuse it
            if answered and isinstance(exc, _FAILURES):
                raise UpstreamConnectionError(f"answer cut off: {_describe(exc)}") from None
            raise
        if headers.get("connection", "").lower() != "close":
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_HOST:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                return status, body
        conn.close()
        return status, body

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader, status_line: bytes) -> tuple[int, dict[str, str]]:
        fields = status_line.split(b" ", 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or not fields[1].isdigit():
            raise _ProtocolError(f"malformed status line {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                return int(fields[1]), headers
            if not line:
                raise ConnectionResetError("connection closed in the answer's headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raise _ProtocolError("too many header lines in the answer")

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()  # the blank line after the last chunk (no trailers expected)
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        raise _ProtocolError("answer without Content-Length or chunked encoding")

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
