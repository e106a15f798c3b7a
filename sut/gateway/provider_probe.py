"""The health probe of a model's providers: V2 readiness, then a canary inference built from the model's
metadata; with the helpers the request path shares (an external provider's infer URL, an error's text)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from sut.gateway.failover_audit import iso_time
from sut.gateway.providers import CONNECTION, TIMEOUT, ProviderSpec, classify

if TYPE_CHECKING:
    from sut.gateway.provider_lock import ModelLock
    from sut.gateway.registry import WorkerRegistry

PROBE_HOLDERS = 3  # pool probes: the pool is healthy when one of (at most) this many workers passes


class ProviderProbe:
    """Probes a model's providers on the gateway's HTTP client; ``pool_unknown_yet`` tells a pool that is
    still within the start-up grace (not judged yet)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        registry: WorkerRegistry,
        pool_unknown_yet: Callable[[ProviderSpec], bool],
    ) -> None:
        self._client = client
        self.registry = registry
        self._pool_unknown_yet = pool_unknown_yet

    async def probe(self, lock: ModelLock, spec: ProviderSpec, version: str) -> dict[str, Any]:
        """Readiness, then a canary inference; ``{"ok", "at", "failure"?, "reason"?, "latency_ms", ...}``."""
        started = time.perf_counter()
        targets = self._probe_targets(lock, spec, version)
        outcome: dict[str, Any] = {"ok": False, "failure": CONNECTION, "reason": "no target"}
        if not targets and self._pool_unknown_yet(spec):
            return {
                "ok": False,
                "judged": False,
                "reason": "the gateway just started: pool not registered yet",
            }
        if not targets:
            outcome = {
                "ok": False,
                "failure": "server_error",
                "reason": f"no worker in pool {spec.pool} holds version {version}",
            }
        for base, infer_url, metadata_url in targets:
            outcome = await self._probe_one(lock, spec, base, infer_url, metadata_url)
            if outcome["ok"]:
                break
        outcome["at"] = iso_time(time.time())
        outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return outcome

    def _probe_targets(self, lock: ModelLock, spec: ProviderSpec, version: str) -> list[tuple[str, str, str]]:
        if spec.kind == "external":
            url = external_infer_url(spec, lock.model)
            return [(spec.url or "", url, url.removesuffix("/infer"))]
        holders = [w for w in self.registry.holders(lock.model, version) if w.pool == spec.pool]
        holders.sort(key=lambda w: not w.healthy)  # healthy ones first; a marked one may be back
        path = f"/v2/models/{lock.model}/versions/{version}"
        return [(w.url, f"{w.url}{path}/infer", f"{w.url}{path}") for w in holders[:PROBE_HOLDERS]]

    async def _probe_one(
        self, lock: ModelLock, spec: ProviderSpec, base: str, infer_url: str, metadata_url: str
    ) -> dict[str, Any]:
        timeout = lock.policy.probe_timeout_s
        try:
            async with asyncio.timeout(timeout):
                ready = await self._client.get(f"{base}/v2/health/ready")
                if ready.status_code != 200:
                    return _refused(ready.status_code, f"{base} not ready ({ready.status_code})")
                canary = lock.canaries.get(spec.name)
                if canary is None:
                    meta = await self._client.get(metadata_url)
                    if meta.status_code != 200:
                        return _refused(meta.status_code, f"metadata answered {meta.status_code}")
                    canary = lock.canaries[spec.name] = canary_body(meta.json())
                answer = await self._client.post(
                    infer_url, content=canary, headers={"content-type": "application/json"}
                )
        except (TimeoutError, httpx.TimeoutException):
            return {"ok": False, "failure": TIMEOUT, "reason": f"{base}: no answer within {timeout:g} s"}
        except httpx.TransportError as exc:
            return {"ok": False, "failure": CONNECTION, "reason": f"{base}: {type(exc).__name__}: {exc}"}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "failure": "server_error", "reason": f"{base}: unusable metadata: {exc}"}
        if answer.status_code != 200:
            failure = (
                classify(answer.status_code) or "server_error"
            )  # our own canary: never the client's fault
            return {
                "ok": False,
                "failure": failure,
                "reason": f"canary answered {answer.status_code}: {error_text(answer.content)}",
            }
        return {"ok": True, "target": base}


def external_infer_url(spec: ProviderSpec, model: str) -> str:
    path = f"/v2/models/{spec.remote_model or model}"
    if spec.remote_version:
        path += f"/versions/{spec.remote_version}"
    return f"{spec.url}{path}/infer"


def canary_body(metadata: dict[str, Any]) -> bytes:
    """A one-row request of zeros that fits the model's declared inputs (dynamic dimensions as 1)."""
    inputs = []
    for spec in metadata["inputs"]:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec["shape"]]
        value: Any = False if spec["datatype"] == "BOOL" else 0
        inputs.append(
            {
                "name": spec["name"],
                "shape": shape,
                "datatype": spec["datatype"],
                "data": [value] * math.prod(shape),
            }
        )
    return json.dumps({"id": "failover-canary", "inputs": inputs}).encode()


def _refused(status: int, reason: str) -> dict[str, Any]:
    """A probe's verdict on a provider that answered ``status`` instead of 200."""
    return {"ok": False, "failure": classify(status) or "server_error", "reason": reason}


def error_text(content: bytes) -> str:
    try:
        payload = json.loads(content)
    except ValueError:
        return content[:200].decode(errors="replace")
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])[:300]
    return ""
