"""One error shape for every service: ``{"error": "<what was wrong>"}`` with a 4xx/5xx status.

``install_error_handlers(app)`` maps request-validation errors, HTTP exceptions, our own
``ApiError`` family and unexpected exceptions onto that shape (never a traceback in a response),
and limits the request body size (413).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("sut.errors")

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(Exception):
    """An error meant for the client: its message is sent as is, with ``status``."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    status = 503


class PayloadTooLarge(ApiError):
    status = 413


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return f"malformed JSON body: {err.get('msg', 'cannot decode')}"
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts) if parts else "invalid request"


class _BodyLimit:
    """Answer 413 when Content-Length exceeds the limit; count streamed bytes for chunked bodies.

    A chunked body that grows past the limit raises ``PayloadTooLarge`` from ``receive``, inside the
    endpoint that reads it, so the regular exception handler answers 413.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_body_bytes <= 0:
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await error_response(400, "invalid Content-Length header")(scope, receive, send)
                    return
                if length > limit:
                    message = f"request body of {length} bytes exceeds the limit of {limit} bytes"
                    await error_response(413, message)(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


class _CatchAll:
    """Turn any exception no handler took into a short 500, logging the traceback to stderr."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                message = f"internal error: {type(exc).__name__}"
                await error_response(500, message)(scope, receive, send)


def install_error_handlers(app: FastAPI, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Make every error of ``app`` answer ``{"error": ...}`` and cap request bodies at ``max_body_bytes``."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response = error_response(exc.status_code, detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, _describe_validation(exc))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    # add_middleware wraps: the last one added is the outermost.
    app.add_middleware(_BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(_CatchAll)
