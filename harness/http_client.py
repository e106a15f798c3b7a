"""The test process's client for one-off requests: health probes, metric scrapes, status reads.

``httpx.get`` builds a client for each call, and each client builds a TLS context that loads the CA
bundle: about 60 ms of CPU even for a plain-HTTP request. The health polls of one cluster start made
~25 such calls, so this cost as much CPU as the services themselves. Here one client serves the whole
process. It keeps no connection alive, so each request opens its own, as a fresh client would: a paused,
killed or restarted service is seen as it is now, never through a connection opened before. It never
takes a proxy from the environment (the services run on this machine or on the project's networks).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

_client: httpx.Client | None = None
_lock = threading.Lock()


def client() -> httpx.Client:
    """The process's shared client (thread-safe; created on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))
        return _client


def get(url: str, *, timeout: float, **kwargs: Any) -> httpx.Response:
    """``GET url`` through the shared client; raises :class:`httpx.HTTPError` as ``httpx.get`` does."""
    return client().get(url, timeout=timeout, **kwargs)


def post(url: str, *, timeout: float, **kwargs: Any) -> httpx.Response:
    """``POST url`` through the shared client."""
    return client().post(url, timeout=timeout, **kwargs)
