"""What the reference cluster's start-up asks the gateway: is it live, register the preloaded versions,
which versions are in production, which workers are listed (plumbing of
:mod:`harness.targets.reference.cluster`, not a step driver: steps use :mod:`harness.drivers.gateway`)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from harness.drivers.gateway import production_versions
from harness.targets.base import TargetError


class PendingWorker(Protocol):
    name: str
    advertise_url: str
    worker_id: str | None


class GatewayAdmin:
    def __init__(self, base_url: str, admin_token: str, timeout: float = 10.0) -> None:
        # one connection pool for all the polling, no TLS context built per poll
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=timeout,
            trust_env=False,  # never through a proxy from the environment: the cluster is on this machine
        )

    def get(self, path: str) -> Any:
        """Admin GET; None when the gateway does not answer 200 (yet)."""
        try:
            resp = self._http.get(path)
        except httpx.HTTPError:
            return None
        return resp.json() if resp.status_code == 200 else None

    def live(self) -> bool:
        try:
            return self._http.get("/v2/health/live", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def register_version(self, model: str, version: str, uri: str) -> None:
        resp = self._http.post(
            f"/admin/models/{model}/versions", json={"version": version, "artifact_uri": uri}
        )
        if resp.status_code not in (200, 201):
            raise TargetError(
                f"registering {model} v{version} ({uri}) failed: {resp.status_code} {resp.text}"
            )

    def production_versions(self) -> set[tuple[str, str]] | None:
        """Each model's ``production`` version (what every new worker must hold); None: no answer yet."""
        status = self.get("/admin/status")
        if not isinstance(status, dict):
            return None
        return set(production_versions(status.get("models", [])).items())

    def listed_workers(self) -> list[dict[str, Any]]:
        listed = self.get("/admin/workers")
        if isinstance(listed, dict):
            listed = listed.get("workers")
        return listed if isinstance(listed, list) else []

    def registered_ids(self, advertise_url: str) -> set[str]:
        return {w["id"] for w in self.listed_workers() if _url(w) == advertise_url}

    def close(self) -> None:
        self._http.close()


def claim_registrations(
    listed: list[dict[str, Any]],
    pending: dict[str, PendingWorker],
    *,
    stale_ids: dict[str, set[str]],
    wanted: set[tuple[str, str]],
) -> None:
    """Match the gateway's worker list against workers waiting to register (keyed by advertised URL):
    one listed under a fresh id and holding every ``wanted`` version gets its ``worker_id`` and leaves
    ``pending``."""
    for worker in listed:
        service = pending.get(_url(worker))
        held = {(m.get("name"), str(m.get("version"))) for m in worker.get("models", [])}
        if (
            service is not None
            and worker.get("id") not in stale_ids.get(service.name, set())
            and wanted <= held
        ):
            service.worker_id = worker["id"]
            del pending[service.advertise_url]


def _url(worker: dict[str, Any]) -> str:
    return str(worker.get("url", "")).rstrip("/")
