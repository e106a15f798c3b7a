"""The V2 (Open Inference Protocol) driver: inference, metadata, readiness and the repository extension
over real HTTP, against any target's front door. Inference answers are recorded as observations.

Request bodies come from the target's :class:`~harness.targets.base.ModelSpec` (its tensor names,
datatypes and shapes), so no step hard-codes a model's input. A connection error or timeout is an answer
too (``status == 0``), never an exception: steps assert on it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness import trace
from harness.observations import Observation, Observations
from harness.targets.base import ModelSpec


@dataclass
class Answer:
    status: int  # HTTP status; 0 = no HTTP answer
    body: Any  # parsed JSON, else text
    latency_s: float
    error: str | None = None  # the error body's "error" field, or the exception text
    request: dict[str, Any] | None = None  # the JSON body that was sent (to judge outputs against it)
    provider: str | None = None  # the provider the server says produced the answer (header X-Provider)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def model_version(self) -> str | None:
        if isinstance(self.body, dict) and self.body.get("model_version") is not None:
            return str(self.body["model_version"])
        return None

    @property
    def outputs(self) -> list[dict[str, Any]]:
        body = self.body
        return list(body.get("outputs") or []) if isinstance(body, dict) else []


def model_path(model: str, version: str | None) -> str:
    return f"/v2/models/{model}" if version is None else f"/v2/models/{model}/versions/{version}"


def request_inputs(body: dict[str, Any] | None) -> dict[str, list[Any]]:
    """The input tensors of a V2 request body, by name (flat data)."""
    return {str(t.get("name")): list(t.get("data") or []) for t in (body or {}).get("inputs") or []}


class V2Client:
    """A client for one V2 front door; ``models`` tells it each model's inputs."""

    def __init__(
        self,
        base_url: str,
        *,
        models: Callable[[str], ModelSpec],
        observations: Observations,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_spec = models
        self.observations = observations
        self.headers = dict(headers or {})
        # A proxy from the environment must never stand between us and a service on this machine; a
        # remote deployment (an external target) may need the user's proxy settings.
        remote = urlsplit(self.base_url).hostname not in ("127.0.0.1", "localhost", "::1")
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=headers or {}, trust_env=remote, verify=verify
        )

    # -- inference -------------------------------------------------------------------------------
    def infer(
        self,
        model: str,
        *,
        version: str | None = None,
        rows: int = 1,
        seed: int = 0,
        request_id: str | None = None,
        inputs: list[dict[str, Any]] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """POST a V2 infer request (valid data for the model unless ``inputs``); recorded."""
        request_id = request_id or uuid.uuid4().hex[:12]
        if inputs is None:
            body = self.model_spec(model).request(rows, seed=seed, request_id=request_id)
        else:
            body = {"id": request_id, "inputs": inputs}
        answer = self._observed("POST", model_path(model, version) + "/infer", body, request_id, timeout)
        answer.request = body
        return answer

    def infer_raw(
        self,
        path: str,
        body: bytes | dict,
        *,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Answer:
        """POST any body to any path (malformed requests, or a body serialized in advance); recorded."""
        content = body if isinstance(body, bytes) else None
        payload = body if isinstance(body, dict) else None
        request_id = payload.get("id") if payload else None
        headers = {"Content-Type": content_type}
        return self._observed("POST", path, payload, request_id, timeout, content=content, headers=headers)

    # -- health and metadata -------------------------------------------------------------------
    def ready(self) -> Answer:
        return self.call("GET", "/v2/health/ready")

    def live(self) -> Answer:
        return self.call("GET", "/v2/health/live")

    def server_metadata(self) -> Answer:
        return self.call("GET", "/v2")

    def model_metadata(self, model: str, version: str | None = None) -> Answer:
        return self.call("GET", model_path(model, version))

    def model_ready(self, model: str, version: str | None = None) -> Answer:
        return self.call("GET", model_path(model, version) + "/ready")

    # -- repository extension ------------------------------------------------------------------
    def repository_index(self) -> Answer:
        return self.call("POST", "/v2/repository/index", json={})

    def close(self) -> None:
        self._http.close()

    # -- internals -------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """One HTTP exchange with the target, never raising for a failed one."""
        trace.touch("http", f"{method} {path}")
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        started = time.perf_counter()
        try:
            resp = self._http.request(method, path, json=json, content=content, headers=headers, **extra)
        except httpx.HTTPError as exc:
            return Answer(0, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}".rstrip(": "))
        latency = time.perf_counter() - started
        body = _parse(resp)
        error = None
        if resp.status_code >= 400:
            error = str(body["error"]) if isinstance(body, dict) and "error" in body else str(body)
        return Answer(resp.status_code, body, latency, error, provider=resp.headers.get("x-provider"))

    def _observed(
        self, method: str, path: str, json: Any, request_id: str | None, timeout: float | None, **kwargs: Any
    ) -> Answer:
        started = time.time()
        answer = self.call(method, path, json=json, timeout=timeout, **kwargs)
        self.observations.add(
            Observation(
                started=started,
                latency_s=answer.latency_s,
                status=answer.status,
                model_version=answer.model_version,
                error=answer.error,
                source="driver",
                request_id=request_id,
                target=f"{method} {path}",
                outputs={str(o.get("name")): o.get("data") for o in answer.outputs} if answer.ok else None,
                inputs=request_inputs(json) if isinstance(json, dict) else None,
                provider=answer.provider,
            )
        )
        return answer


def _parse(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text
