"""The reference gateway's admin driver: catalog, versions, aliases, swap/rollback, audit, the worker
registry, behind its bearer token (the target capability ``admin``). V2 calls come from
:class:`harness.drivers.v2.V2Client`, which this client extends, so one client serves a step that infers
and then asks the catalog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from harness.drivers.routing_admin import RoutingAdminMixin
from harness.drivers.v2 import Answer, V2Client

__all__ = ["ROLLOUT_TIMEOUT_S", "AdminError", "Answer", "GatewayClient", "production_versions"]


class AdminError(RuntimeError):
    """An admin query that must return data did not; the message has the status and the error."""

    def __init__(self, target: str, answer: Answer) -> None:
        super().__init__(f"{target} answered {answer.status}: {answer.error or answer.body!r}")
        self.answer = answer


#: Deadline for swap and rollback: they load a version on every worker and drain the old one, which
#: takes far longer than an inference on a busy machine; the gateway bounds its own waits below this.
ROLLOUT_TIMEOUT_S = 120.0


class GatewayClient(RoutingAdminMixin, V2Client):  # + policies, alerts, shadow, versions, lineage, clock
    """V2 client plus the admin API (header ``Authorization: Bearer <token>`` on admin calls only)."""

    def __init__(self, base_url: str, *, admin_token: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.admin_token = admin_token
        self._admin_headers = {"Authorization": f"Bearer {admin_token}"}

    # -- admin ------------------------------------------------------------------------------------
    def status(self) -> dict:
        return self._admin_data("/admin/status", dict)

    def workers(self) -> list[dict]:
        return self._admin_data("/admin/workers", list, key="workers")

    def models(self) -> list[dict]:
        return self._admin_data("/admin/models", list, key="models")

    def versions(self, model: str) -> list[dict]:
        return self._admin_data(f"/admin/models/{model}/versions", list, key="versions")

    def production(self, model: str) -> str | None:
        """The catalog's ``production`` version of ``model``; None when the catalog names none (or does not
        list the model). Raises :class:`AdminError` when the gateway does not answer with its catalog."""
        return production_versions(self.models()).get(model)

    def register_version(
        self, model: str, artifact_uri: str, *, version: str | None = None, parent_version: str | None = None
    ) -> Answer:
        body: dict[str, Any] = {"artifact_uri": artifact_uri}
        if version is not None:
            body["version"] = version
        if parent_version is not None:
            body["parent_version"] = parent_version
        return self.admin_call("POST", f"/admin/models/{model}/versions", json=body)

    def swap(self, model: str, version: str) -> Answer:
        body = {"version": version}
        return self.admin_call("POST", f"/admin/models/{model}/swap", json=body, timeout=ROLLOUT_TIMEOUT_S)

    def rollback(self, model: str) -> Answer:
        return self.admin_call("POST", f"/admin/models/{model}/rollback", timeout=ROLLOUT_TIMEOUT_S)

    def audit(self) -> list[dict]:
        return self._admin_data("/admin/audit", list, key="audit")

    # -- the worker registry, called as a worker (or a stranger) would; never recorded as traffic -------
    def register_worker(
        self, url: str, name: str, *, token: str | None, models: list[dict[str, str]] | None = None
    ) -> Answer:
        """``POST /internal/workers/register`` presenting ``token`` as the join token (None: none)."""
        body = {"url": url, "name": name, "models": models or []}
        return self.call("POST", "/internal/workers/register", json=body, headers=_bearer(token))

    def heartbeat_worker(self, worker_id: str, *, token: str | None, worker_token: str | None) -> Answer:
        """A heartbeat for ``worker_id`` with the given join token and worker token (None: not sent)."""
        headers = {**_bearer(token), **_worker_token(worker_token)}
        return self.call(
            "POST", f"/internal/workers/{worker_id}/heartbeat", json={"models": []}, headers=headers
        )

    def deregister_worker(self, worker_id: str, *, token: str | None, worker_token: str | None) -> Answer:
        headers = {**_bearer(token), **_worker_token(worker_token)}
        return self.call("DELETE", f"/internal/workers/{worker_id}", headers=headers)

    # -- the provider lock ----------------------------------------------------------------------------
    def configure_providers(self, model: str, config: dict[str, Any]) -> Answer:
        """``PUT /admin/models/{m}/providers`` (providers in priority order, failover policy)."""
        return self.admin_call("PUT", f"/admin/models/{model}/providers", json=config)

    def providers(self, model: str) -> dict:
        """The lock holder, each provider's counters and last probes."""
        return self._admin_data(f"/admin/models/{model}/providers", dict)

    def failover_audit(self, model: str | None = None) -> dict:
        """``{"entries": [...], "dropped", "limit"}``: the provider lock's audit trail, oldest first."""
        query = f"?model={model}" if model else ""
        return self._admin_data(f"/admin/failover/audit{query}", dict)

    def admin_as(self, path: str, *, token: str | None) -> Answer:
        """``GET`` an admin path presenting ``token`` (None: no credential) instead of the admin token."""
        return self.call("GET", path, headers=_bearer(token))

    def auth_refusals(self) -> Counter[tuple[str, str]]:
        """``sut_auth_refused_total`` by (api, reason): the refusals the gateway counted."""
        answer = self.call("GET", "/metrics")
        if not answer.ok or not isinstance(answer.body, str):
            raise AdminError("GET /metrics", answer)
        counts: Counter[tuple[str, str]] = Counter()
        for family in text_string_to_metric_families(answer.body):
            for sample in family.samples:
                if sample.name == "sut_auth_refused_total":
                    counts[(str(sample.labels.get("api")), str(sample.labels.get("reason")))] += int(
                        sample.value
                    )
        return counts

    def admin_call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """An admin request with the cluster's token (or ``token``: "" sends none, for access checks)."""
        headers = (
            self._admin_headers if token is None else ({"Authorization": f"Bearer {token}"} if token else {})
        )
        return self.call(method, path, json=json, headers=headers, timeout=timeout)

    def _admin_data(self, path: str, kind: type, key: str | None = None) -> Any:
        answer = self.admin_call("GET", path)
        body = answer.body
        if key and isinstance(body, dict) and isinstance(body.get(key), list):
            body = body[key]  # tolerate a wrapped list: {"workers": [...]}
        if not answer.ok or not isinstance(body, kind):
            raise AdminError(f"GET {path}", answer)
        return body


def production_versions(models: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The one parser of the ``production`` alias: model name -> its production version, for each catalog
    entry (of ``GET /admin/models``, or the ``models`` of ``GET /admin/status``) whose ``aliases`` name one.
    """
    out: dict[str, str] = {}
    for entry in models:
        version = (entry.get("aliases") or {}).get("production")
        if version is not None:
            out[str(entry.get("name"))] = str(version)
    return out


def _bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _worker_token(token: str | None) -> dict[str, str]:
    return {} if token is None else {"X-Worker-Token": token}
