"""The gateway driver: V2 inference and admin calls over real HTTP, every answer recorded.

Inference calls (``infer``, ``infer_raw``) become :class:`harness.observations.Observation` records,
so SLO and "which version answered" checks read what the cluster really did. A connection error or
timeout is an answer too (``status == 0``), never an exception: steps assert on it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from harness import trace
from harness.drivers.routing_admin import RoutingAdminMixin
from harness.observations import Observation, Observations

N_FEATURES = 4


@dataclass
class Answer:
    status: int  # HTTP status; 0 = no HTTP answer
    body: Any  # parsed JSON, else text
    latency_s: float
    error: str | None = None  # the error body's "error" field, or the exception text

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def model_version(self) -> str | None:
        if isinstance(self.body, dict) and self.body.get("model_version") is not None:
            return str(self.body["model_version"])
        return None


class AdminError(RuntimeError):
    """An admin query that must return data did not; the message has the status and the error."""

    def __init__(self, target: str, answer: Answer) -> None:
        super().__init__(f"{target} answered {answer.status}: {answer.error or answer.body!r}")
        self.answer = answer


def demo_rows(rows: int) -> list[float]:
    """Deterministic ``[rows, 4]`` feature data, row-major (the same request gives the same answer)."""
    return [round(((i % 11) * 0.25) - 1.0, 4) for i in range(rows * N_FEATURES)]


def infer_body(rows: int = 1, request_id: str | None = None) -> dict[str, Any]:
    tensor = {"name": "input", "shape": [rows, N_FEATURES], "datatype": "FP32", "data": demo_rows(rows)}
    body: dict[str, Any] = {"inputs": [tensor]}
    if request_id is not None:
        body["id"] = request_id
    return body


#: Deadline for swap and rollback: they load a version on every worker and drain the old one, which
#: takes far longer than an inference on a busy machine; the gateway bounds its own waits below this.
ROLLOUT_TIMEOUT_S = 120.0


class GatewayClient(RoutingAdminMixin):  # + policies, alerts, shadow, versions, lineage, clock
    def __init__(
        self, base_url: str, *, admin_token: str, observations: Observations, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.observations = observations
        # trust_env=False: a proxy from the environment must never stand between us and the cluster
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)
        self._admin_headers = {"Authorization": f"Bearer {admin_token}"}

    # -- V2 ---------------------------------------------------------------------------------------
    def infer(
        self,
        model: str,
        *,
        version: str | None = None,
        rows: int = 1,
        request_id: str | None = None,
        inputs: list[dict[str, Any]] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """POST a V2 infer request (deterministic demo data unless ``inputs``); recorded as an observation."""
        request_id = request_id or uuid.uuid4().hex[:12]
        body = infer_body(rows, request_id) if inputs is None else {"id": request_id, "inputs": inputs}
        return self._observed("POST", _model_path(model, version) + "/infer", body, request_id, timeout)

    def infer_raw(self, path: str, body: bytes | dict, *, content_type: str = "application/json") -> Answer:
        """POST any body to any path (malformed requests); recorded as an observation."""
        content = body if isinstance(body, bytes) else None
        payload = body if isinstance(body, dict) else None
        request_id = payload.get("id") if payload else None
        return self._observed(
            "POST", path, payload, request_id, None, content=content, headers={"Content-Type": content_type}
        )

    def ready(self) -> Answer:
        return self._call("GET", "/v2/health/ready")

    def live(self) -> Answer:
        return self._call("GET", "/v2/health/live")

    def model_metadata(self, model: str, version: str | None = None) -> Answer:
        return self._call("GET", _model_path(model, version))

    # -- admin ------------------------------------------------------------------------------------
    def status(self) -> dict:
        return self._admin_data("/admin/status", dict)

    def workers(self) -> list[dict]:
        return self._admin_data("/admin/workers", list, key="workers")

    def models(self) -> list[dict]:
        return self._admin_data("/admin/models", list, key="models")

    def versions(self, model: str) -> list[dict]:
        return self._admin_data(f"/admin/models/{model}/versions", list, key="versions")

    def register_version(
        self, model: str, artifact_uri: str, *, version: str | None = None, parent_version: str | None = None
    ) -> Answer:
        body: dict[str, Any] = {"artifact_uri": artifact_uri}
        if version is not None:
            body["version"] = version
        if parent_version is not None:
            body["parent_version"] = parent_version
        return self._call("POST", f"/admin/models/{model}/versions", json=body, admin=True)

    def swap(self, model: str, version: str) -> Answer:
        body = {"version": version}
        return self._call(
            "POST", f"/admin/models/{model}/swap", json=body, admin=True, timeout=ROLLOUT_TIMEOUT_S
        )

    def rollback(self, model: str) -> Answer:
        return self._call("POST", f"/admin/models/{model}/rollback", admin=True, timeout=ROLLOUT_TIMEOUT_S)

    def audit(self) -> list[dict]:
        return self._admin_data("/admin/audit", list, key="audit")

    def close(self) -> None:
        self._http.close()

    # -- internals --------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        admin: bool = False,
        timeout: float | None = None,
    ) -> Answer:
        trace.touch("http", f"{method} {path}")
        all_headers = {**(self._admin_headers if admin else {}), **(headers or {})}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        started = time.perf_counter()
        try:
            resp = self._http.request(method, path, json=json, content=content, headers=all_headers, **extra)
        except httpx.HTTPError as exc:
            return Answer(0, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}".rstrip(": "))
        latency = time.perf_counter() - started
        body = _parse(resp)
        error = None
        if resp.status_code >= 400:
            error = str(body["error"]) if isinstance(body, dict) and "error" in body else str(body)
        return Answer(resp.status_code, body, latency, error)

    def _observed(
        self,
        method: str,
        path: str,
        json: Any,
        request_id: str | None,
        timeout: float | None,
        **kwargs: Any,
    ) -> Answer:
        started = time.time()
        answer = self._call(method, path, json=json, timeout=timeout, **kwargs)
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
            )
        )
        return answer

    def _admin_data(self, path: str, kind: type, key: str | None = None) -> Any:
        answer = self._call("GET", path, admin=True)
        body = answer.body
        if key and isinstance(body, dict) and isinstance(body.get(key), list):
            body = body[key]  # tolerate a wrapped list: {"workers": [...]}
        if not answer.ok or not isinstance(body, kind):
            raise AdminError(f"GET {path}", answer)
        return body


def _model_path(model: str, version: str | None) -> str:
    return f"/v2/models/{model}" if version is None else f"/v2/models/{model}/versions/{version}"


def _parse(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text
