"""What the model catalog stores, as its stores hand it over: versions, alias changes, audit entries and
the whole snapshot loaded at startup (see :mod:`sut.gateway.catalog_store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    artifact_uri: str
    sha256: str
    size_bytes: int
    created_at: str
    parent_version: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "artifact_uri": self.artifact_uri,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "parent_version": self.parent_version,
        }


@dataclass(frozen=True)
class AliasChange:
    model: str
    alias: str
    from_version: str | None
    to_version: str
    at: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    action: str
    model: str | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "action": self.action,
            "model": self.model,
            "details": self.details,
        }


@dataclass
class CatalogSnapshot:
    """Everything the store holds, as loaded at startup."""

    versions: list[VersionRecord] = field(default_factory=list)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    alias_history: list[AliasChange] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    # small JSON documents by key (provider failover: "providers/<model>", "failover-audit")
    settings: dict[str, str] = field(default_factory=dict)
    # model -> its routing configuration (policy, alert rule, pinned versions; see sut.gateway.routing_config)
    routing: dict[str, dict[str, Any]] = field(default_factory=dict)
