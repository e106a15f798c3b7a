"""The gateway's versioning and routing admin API, as methods of the gateway driver (``world.gateway``).

A mixin of :class:`harness.drivers.gateway.GatewayClient`: routing policies, promotion, alert rules, the
shadow report, loading/unloading extra versions, lineage and the clock the time rules read. Changes
answer an :class:`~harness.drivers.gateway.Answer` (steps judge refusals too); reads raise
:class:`~harness.drivers.gateway.AdminError` when the gateway does not answer with data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.drivers.gateway import Answer

#: Changes that load versions on every worker (a policy, a load) may take as long as a swap.
LOAD_TIMEOUT_S = 120.0


class RoutingAdminMixin:
    """Needs ``admin_call`` and ``_admin_data`` of :class:`~harness.drivers.gateway.GatewayClient`."""

    def set_policy(self, model: str, policy: dict[str, Any], reason: str | None = None) -> Answer:
        body = {**policy, **({"reason": reason} if reason else {})}
        return self.admin_call("PUT", f"/admin/models/{model}/policy", json=body, timeout=LOAD_TIMEOUT_S)

    def routing(self, model: str) -> dict[str, Any]:
        """``{"production", "policy", "alert", "pinned", "versions_in_use"}`` of the model."""
        return self._admin_data(f"/admin/models/{model}/policy", dict)

    def clear_policy(self, model: str) -> Answer:
        return self.admin_call("DELETE", f"/admin/models/{model}/policy", timeout=LOAD_TIMEOUT_S)

    def promote(self, model: str, version: str, reason: str | None = None) -> Answer:
        body = {"version": version, **({"reason": reason} if reason else {})}
        return self.admin_call("POST", f"/admin/models/{model}/promote", json=body, timeout=LOAD_TIMEOUT_S)

    def set_alert(self, model: str, rule: dict[str, Any]) -> Answer:
        return self.admin_call("PUT", f"/admin/models/{model}/alert", json=rule)

    def alert(self, model: str) -> dict[str, Any]:
        return self._admin_data(f"/admin/models/{model}/alert", dict)

    def shadow_report(self, model: str) -> dict[str, Any]:
        return self._admin_data(f"/admin/models/{model}/shadow", dict)

    def load_version(self, model: str, version: str) -> Answer:
        path = f"/admin/models/{model}/versions/{version}/load"
        return self.admin_call("POST", path, timeout=LOAD_TIMEOUT_S)

    def unload_version(self, model: str, version: str) -> Answer:
        path = f"/admin/models/{model}/versions/{version}/unload"
        return self.admin_call("POST", path, timeout=LOAD_TIMEOUT_S)

    def lineage(self, model: str, version: str) -> dict[str, Any]:
        return self._admin_data(f"/admin/models/{model}/versions/{version}/lineage", dict)

    def clock(self) -> dict[str, Any]:
        return self._admin_data("/admin/clock", dict)

    def rollback_because(self, model: str, reason: str) -> Answer:
        """A manual rollback that says why (kept in the audit trail with the actor)."""
        return self.admin_call(
            "POST",
            f"/admin/models/{model}/rollback",
            json={"reason": reason},
            timeout=LOAD_TIMEOUT_S,
        )
