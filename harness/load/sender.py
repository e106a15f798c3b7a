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
from harness.drivers.v2 import V2Client, request_inputs
from harness.observations import Observation


@dataclass(frozen=True)
class Sent:
    """One request and what came back."""

    observation: Observation  # status 0 = no HTTP answer (connection error, client timeout)
    request_id: str
    echoed_id: str | None  # the ``id`` of the answer body, if any
    timed_out: bool  # the client gave up waiting
    request: dict | None = None  # the body sent
    outputs: list | None = None  # the answer's outputs (to judge what was computed)


class InferSender:
    """A thread-safe HTTP client for ``POST /v2/models/{model}/infer`` with a pool as large as asked, on
    the front door of ``v2`` (its URL, headers and the models' request bodies)."""

    def __init__(self, v2: V2Client, *, connections: int, timeout: float = 10.0) -> None:
        self.v2 = v2
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.Client(
            base_url=v2.base_url, timeout=timeout, limits=limits, headers=v2.headers, trust_env=False
        )

    def send(self, model: str, request_id: str, rows: int = 1, seed: int = 0) -> Sent:
        path = f"/v2/models/{model}/infer"
        body = self.v2.model_spec(model).request(rows, seed=seed, request_id=request_id)
        outputs = None
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
                outputs = payload.get("outputs")
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
            outputs={str(o.get("name")): o.get("data") for o in outputs or [] if isinstance(o, dict)} or None,
            inputs=request_inputs(body),
        )
        return Sent(observation, request_id, echoed, timed_out, body, outputs)

    def close(self) -> None:
        self._http.close()
