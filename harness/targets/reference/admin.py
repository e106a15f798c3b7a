"""What the reference cluster's start-up asks the gateway: is it live, register the preloaded versions,
which versions are in production, which workers are listed (plumbing of
:mod:`harness.targets.reference.cluster`, not a step driver: steps use :mod:`harness.drivers.gateway`)."""

from __future__ import annotations

from typing import Any, Protocol

from harness.drivers.gateway import production_versions
from harness.targets.base import TargetError
from sut.admin_client import AdminApiError, AdminClient


class PendingWorker(Protocol):
    name: str
    advertise_url: str
    worker_id: str | None


class GatewayAdmin:
    """Quiet polling on the product's :class:`AdminClient`: start-up asks a gateway that may not answer
    yet, so a question without an answer is None (or False), not an error."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = 10.0) -> None:
        # one connection pool for all the polling; never through a proxy from the environment: the
        # cluster is on this machine
        self._api = AdminClient(base_url, admin_token, timeout=timeout, trust_env=False)

    def get(self, path: str) -> Any:
        """Admin GET; None when the gateway does not answer it (yet)."""
        return self._api.get_or_none(path)

    def live(self) -> bool:
        return self._api.get_or_none("/v2/health/live", timeout=1.0) is not None

    def register_version(self, model: str, version: str, uri: str) -> None:
        try:
            self._api.call(
                "POST", f"/admin/models/{model}/versions", json={"version": version, "artifact_uri": uri}
            )
        except AdminApiError as exc:
            answer = exc.detail if exc.status is None else f"{exc.status} {exc.detail}"
            raise TargetError(f"registering {model} v{version} ({uri}) failed: {answer}") from exc

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
        self._api.close()


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
