"""The trainer's view of the gateway: catalog status, feature log, version registration, swap."""

from __future__ import annotations

from sut.admin_client import AdminApiError, AdminClient

GatewayError = AdminApiError  # the name the trainer's callers catch


class GatewayAdmin(AdminClient):
    """Named admin calls on :class:`AdminClient`; each failure a :data:`GatewayError`."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        # the gateway is a peer in the same cluster, never behind a proxy
        super().__init__(base_url, token, timeout=timeout, trust_env=False)

    def production_versions(self) -> dict[str, str]:
        status = self.call("GET", "/admin/status")
        return {
            m["name"]: m["aliases"]["production"] for m in status["models"] if "production" in m["aliases"]
        }

    def versions(self, model: str) -> list[dict]:
        return self.call("GET", f"/admin/models/{model}/versions")

    def feature_log(self, model: str, after: int, limit: int = 5000) -> dict:
        return self.call("GET", "/admin/feature-log", params={"model": model, "after": after, "limit": limit})

    def register_version(self, model: str, artifact_uri: str, version: str, parent_version: str) -> dict:
        body = {"artifact_uri": artifact_uri, "version": version, "parent_version": parent_version}
        return self.call("POST", f"/admin/models/{model}/versions", json=body)

    def swap(self, model: str, version: str) -> dict:
        return self.call("POST", f"/admin/models/{model}/swap", json={"version": version})
