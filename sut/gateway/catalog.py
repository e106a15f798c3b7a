"""The model catalog: versions, aliases, alias history and the audit trail, mirrored in memory.

Reads come from memory only. Writes go to the store first (in a thread), then to memory, both under the
store guard's lock, so memory never holds something the database refused and always holds every
acknowledged write: the guard replays it into a recovered database (see ``catalog_recovery``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sut.errors import ApiError
from sut.gateway.catalog_records import AliasChange, AuditEntry, CatalogSnapshot, VersionRecord
from sut.gateway.catalog_recovery import CatalogUnavailable, StoreGuard
from sut.gateway.catalog_store import CatalogStore

log = logging.getLogger("sut.gateway.catalog")

T = TypeVar("T")
PRODUCTION = "production"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CatalogError(ApiError):
    """A catalog request that cannot be satisfied; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_name(kind: str, value: object) -> str:
    """Model and version names: short, no slashes, no surprises in URLs or paths."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _NAME.match(value):
        raise CatalogError(400, f"invalid {kind} {value!r}: use letters, digits, '.', '_' or '-'")
    return value


@dataclass
class ModelEntry:
    name: str
    versions: dict[str, VersionRecord] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    history: list[AliasChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": list(self.versions), "aliases": dict(self.aliases)}


class Catalog:
    def __init__(self, store: CatalogStore, artifact_root: Path, audit_limit: int = 10_000) -> None:
        self.store = store
        self.artifact_root = artifact_root.resolve()
        self.models: dict[str, ModelEntry] = {}
        self.audit_entries: list[AuditEntry] = []
        self.settings: dict[str, str] = {}  # small JSON documents by key (see put_setting)
        # model -> routing configuration (policy, alert rule, pinned versions), owned by sut.gateway.policies
        self.routing: dict[str, dict[str, Any]] = {}
        self._audit_limit = audit_limit
        self._write_lock = asyncio.Lock()
        self._audit_lock = asyncio.Lock()
        self.guard = StoreGuard(store, self.snapshot)

    # -- startup -------------------------------------------------------------------------------------
    def load(self) -> None:
        snap = self.store.load()
        for rec in snap.versions:
            self._entry(rec.model).versions[rec.version] = rec
        for (model, alias), version in snap.aliases.items():
            self._entry(model).aliases[alias] = version
        for change in snap.alias_history:
            self._entry(change.model).history.append(change)
        self.audit_entries = snap.audit[-self._audit_limit :]
        self.settings = dict(snap.settings)
        self.routing = {m: c for m, c in snap.routing.items() if m in self.models}

    def snapshot(self) -> CatalogSnapshot:
        """The in-memory mirror in the store's terms: what a recovered database must hold."""
        snap = CatalogSnapshot(audit=list(self.audit_entries), settings=dict(self.settings))
        for entry in self.models.values():
            snap.versions.extend(entry.versions.values())
            snap.aliases.update({(entry.name, alias): v for alias, v in entry.aliases.items()})
            snap.alias_history.extend(entry.history)
        snap.routing = {m: dict(c) for m, c in self.routing.items()}
        snap.versions.sort(key=lambda r: r.created_at)
        snap.alias_history.sort(key=lambda c: c.at)  # stable: one model's changes keep their order
        return snap

    def _entry(self, model: str) -> ModelEntry:
        entry = self.models.get(model)
        if entry is None:
            entry = self.models[model] = ModelEntry(model)
        return entry

    # -- reads (memory only) ---------------------------------------------------------------------------
    def get_model(self, model: str) -> ModelEntry:
        entry = self.models.get(model)
        if entry is None:
            raise CatalogError(404, f"model {model!r} not found")
        return entry

    def get_version(self, model: str, version: str) -> VersionRecord:
        rec = self.get_model(model).versions.get(version)
        if rec is None:
            raise CatalogError(404, f"model {model!r} has no version {version!r}")
        return rec

    def resolve(self, model: str, version: str | None) -> str:
        """The version an infer request means: the one it names, else the ``production`` alias."""
        entry = self.get_model(model)
        if version is None:
            target = entry.aliases.get(PRODUCTION)
            if target is None:
                raise CatalogError(404, f"model {model!r} has no {PRODUCTION} version")
            return target
        if version not in entry.versions:
            raise CatalogError(404, f"model {model!r} has no version {version!r}")
        return version

    def production(self, model: str) -> str | None:
        return self.get_model(model).aliases.get(PRODUCTION)

    def previous_production(self, model: str) -> str | None:
        """The version the last ``production`` change replaced (the rollback target)."""
        for change in reversed(self.get_model(model).history):
            if change.alias == PRODUCTION:
                return change.from_version
        return None

    def artifact_path(self, artifact_uri: str) -> Path:
        """The file an artifact URI names, refusing anything outside the artifact root."""
        if not isinstance(artifact_uri, str) or not artifact_uri.strip():
            raise CatalogError(400, "artifact_uri must be a non-empty string relative to the artifact root")
        if Path(artifact_uri).is_absolute():
            raise CatalogError(400, f"artifact_uri {artifact_uri!r} must be relative to the artifact root")
        path = (self.artifact_root / artifact_uri).resolve()
        if not path.is_relative_to(self.artifact_root):
            raise CatalogError(400, f"artifact_uri {artifact_uri!r} points outside the artifact root")
        return path

    # -- writes (store, then memory) ---------------------------------------------------------------------
    async def register_version(
        self, model: str, version: str | None, artifact_uri: str, parent_version: str | None
    ) -> VersionRecord:
        model = check_name("model name", model)
        path = self.artifact_path(artifact_uri)
        if not path.is_file():
            raise CatalogError(404, f"artifact {artifact_uri!r} not found under the artifact root")
        sha256, size = await asyncio.to_thread(_digest, path)
        async with self._write_lock:
            entry = self.models.get(model)
            known = entry.versions if entry else {}
            version = check_name("version", version) if version is not None else _next_version(known)
            if version in known:
                raise CatalogError(409, f"model {model!r} already has version {version!r}")
            if parent_version is not None:
                parent_version = check_name("parent_version", parent_version)
                if parent_version not in known:
                    raise CatalogError(404, f"parent version {parent_version!r} of model {model!r} not found")
            rec = VersionRecord(model, version, artifact_uri, sha256, size, utc_now(), parent_version)
            await self._store(self.store.add_version, rec, then=lambda _: self._add_version(rec))
        await self.audit("register_version", model, rec.as_dict())
        if self.models[model].aliases.get(PRODUCTION) is None:
            await self.set_alias(model, PRODUCTION, version)
        return rec

    async def set_alias(self, model: str, alias: str, version: str) -> AliasChange:
        async with self._write_lock:
            entry = self.get_model(model)
            change = AliasChange(model, alias, entry.aliases.get(alias), version, utc_now())

            def apply(_: None) -> None:
                entry.aliases[alias] = version
                entry.history.append(change)

            await self._store(self.store.set_alias, change, then=apply)
        await self.audit(
            "set_alias", model, {"alias": alias, "from_version": change.from_version, "to_version": version}
        )
        return change

    async def set_routing(self, model: str, config: dict[str, Any] | None) -> None:
        """Persist a model's routing configuration (None removes it), then mirror it in memory."""
        self.get_model(model)

        def apply(_: None) -> None:
            if config is None:
                self.routing.pop(model, None)
            else:
                self.routing[model] = config

        async with self._write_lock:
            await self._store(self.store.set_routing, model, config, utc_now(), then=apply)

    async def audit(self, action: str, model: str | None, details: dict[str, Any]) -> AuditEntry:
        async with self._audit_lock:  # one at a time: memory keeps the database's id order
            at = utc_now()
            added: list[AuditEntry] = []

            def apply(entry_id: int) -> None:
                added.append(AuditEntry(entry_id, at, action, model, details))
                self.audit_entries.append(added[0])

            await self._store(self.store.add_audit, at, action, model, details, then=apply)
            entry = added[0]
        if len(self.audit_entries) > self._audit_limit:
            del self.audit_entries[: len(self.audit_entries) - self._audit_limit]
        log.info("audit %s model=%s %s", action, model, details)
        return entry

    def _add_version(self, rec: VersionRecord) -> None:
        self._entry(rec.model).versions[rec.version] = rec

    async def _store(self, method: Callable[..., T], *args: Any, then: Callable[[T], None]) -> T:
        """Run a blocking store call in a thread, then ``then`` (the memory update), through the guard;
        a refusing database is a 503 that says so."""
        try:
            return await self.guard.run(method, *args, then=then)
        except CatalogUnavailable as exc:
            log.error("change not made: %s", exc)
            raise
        except Exception as exc:
            log.error("catalog database refused %s: %s: %s", method.__name__, type(exc).__name__, exc)
            raise CatalogError(
                503, f"catalog database refused the change ({method.__name__}): {type(exc).__name__}: {exc}"
            ) from None

    async def put_setting(self, key: str, value: str | None) -> None:
        """Store (None: remove) a small document that must survive a restart and a recovery: database
        first, then memory (so a recovery replays it)."""

        def apply(_: None) -> None:
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value

        await self._store(self.store.put_setting, key, value, then=apply)

    async def audit_best_effort(self, action: str, model: str | None, details: dict[str, Any]) -> None:
        """Audit an event the gateway must not fail over (worker churn): log when the store refuses."""
        try:
            await self.audit(action, model, details)
        except Exception as exc:
            log.warning("audit of %s not stored: %s", action, exc)


def _digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _next_version(known: dict[str, VersionRecord]) -> str:
    numbers = [int(v) for v in known if v.isdigit()]
    return str(max(numbers, default=0) + 1)
