"""The trainer's view of the gateway: catalog status, feature log, version registration, swap."""

from __future__ import annotations

from typing import Any

import httpx


class GatewayError(RuntimeError):
    pass


class GatewayAdmin:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            trust_env=False,  # the gateway is a peer in the same cluster, never behind a proxy
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise GatewayError(f"{method} {path} answered {response.status_code}: {message}")
        return response.json()

    def production_versions(self) -> dict[str, str]:
        status = self._call("GET", "/admin/status")
        return {
            m["name"]: m["aliases"]["production"] for m in status["models"] if "production" in m["aliases"]
        }

    def versions(self, model: str) -> list[dict]:
        return self._call("GET", f"/admin/models/{model}/versions")

    def feature_log(self, model: str, after: int, limit: int = 5000) -> dict:
        return self._call(
            "GET", "/admin/feature-log", params={"model": model, "after": after, "limit": limit}
        )

    def register_version(self, model: str, artifact_uri: str, version: str, parent_version: str) -> dict:
        body = {"artifact_uri": artifact_uri, "version": version, "parent_version": parent_version}
        return self._call("POST", f"/admin/models/{model}/versions", json=body)

    def swap(self, model: str, version: str) -> dict:
        return self._call("POST", f"/admin/models/{model}/swap", json={"version": version})

    def close(self) -> None:
        self._http.close()
