"""Inference requests sent from threads of the test process, each recorded with the id it carried.

Used where the *shape* of the traffic is the point and Locust (a subprocess with closed-loop users)
does not fit: a burst of requests released at the same instant (:mod:`harness.load.burst`) and an
open-loop sender that keeps a fixed rate whatever the answers take (:mod:`harness.load.paced`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from harness import trace
from harness.drivers.gateway import infer_body
from harness.load.runner import check_host
from harness.observations import Observation


@dataclass(frozen=True)
class Sent:
    """One request and what came back."""

    observation: Observation  # status 0 = no HTTP answer (connection error, client timeout)
    request_id: str
    echoed_id: str | None  # the ``id`` of the answer body, if any
    timed_out: bool  # the client gave up waiting


class InferSender:
    """A thread-safe HTTP client for ``POST /v2/models/{model}/infer`` with a pool as large as asked."""

    def __init__(self, base_url: str, *, connections: int, timeout: float = 10.0) -> None:
        self.base_url = check_host(base_url)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, limits=limits, trust_env=False)

    def send(self, model: str, request_id: str, rows: int = 1) -> Sent:
        path = f"/v2/models/{model}/infer"
        body = infer_body(rows, request_id)
        trace.touch("http", f"POST {path}")
        started_wall, started = time.time(), time.perf_counter()
        status, echoed, error, version, timed_out = 0, None, None, None, False
        try:
            resp = self._http.post(path, json=body)
            status = resp.status_code
            try:
                payload = resp.json()
            except ValueError:
                payload = resp.text
            if isinstance(payload, dict):
                echoed = None if payload.get("id") is None else str(payload["id"])
                version = None if payload.get("model_version") is None else str(payload["model_version"])
                if status >= 400:
                    error = str(payload.get("error", payload))
            elif status >= 400:
                error = str(payload)[:300]
        except httpx.TimeoutException as exc:
            timed_out, error = True, f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - started
        observation = Observation(
            started=started_wall,
            latency_s=latency,
            status=status,
            model_version=version,
            error=error,
            source="driver",
            request_id=request_id,
            target=f"POST {path}",
        )
        return Sent(observation, request_id, echoed, timed_out)

    def close(self) -> None:
        self._http.close()
