"""``install_error_handlers``: every failure of a real FastAPI app served over HTTP is ``{"error": ...}``."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from harness import waiting
from sut.errors import ApiError, install_error_handlers

JSON = {"content-type": "application/json"}


class Item(BaseModel):
    name: str
    count: int


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, max_body_bytes=1000)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals")

    @app.get("/teapot")
    async def teapot() -> dict:
        raise ApiError("no coffee here", 418)

    @app.post("/items")
    async def items(item: Item) -> dict:
        return {"name": item.name}

    return app


@pytest.fixture(scope="module")
def url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    waiting.until(lambda: server.started, timeout=30, what="the uvicorn server to start", interval=0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "says"),
    [
        ("GET", "/boom", {}, 500, "internal error: RuntimeError"),
        ("GET", "/teapot", {}, 418, "no coffee here"),
        ("GET", "/nowhere", {}, 404, "Not Found"),
        ("DELETE", "/teapot", {}, 405, "Method Not Allowed"),
        ("POST", "/items", {"content": b'{"name": ', "headers": JSON}, 400, "malformed JSON"),
        ("POST", "/items", {"json": {"name": "x", "count": "many"}}, 400, "count"),
        ("POST", "/items", {"json": {"name": "x" * 2000, "count": 1}}, 413, "exceeds the limit of 1000"),
    ],
)
def test_errors_have_one_shape(url, method, path, kwargs, status, says):
    response = httpx.request(method, url + path, timeout=10, trust_env=False, **kwargs)
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["error"] and says in body["error"]
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_valid_request_passes(url):
    response = httpx.post(url + "/items", json={"name": "x", "count": 1}, timeout=10, trust_env=False)
    assert response.status_code == 200 and response.json() == {"name": "x"}
