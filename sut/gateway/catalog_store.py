"""Persistence of the model catalog behind one small interface (SQLite by default, PostgreSQL by DSN).

The gateway serves every read from its in-memory mirror (``catalog.Catalog``); the store is only
written to and read once at startup. Keeping the interface this small lets a later change put a
fallback (serve from memory, restore from a backup) in front of a broken database.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


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


class CatalogStore(Protocol):
    """What the catalog needs from a database. Every method is blocking; callers run it in a thread."""

    def load(self) -> CatalogSnapshot: ...
    def add_version(self, record: VersionRecord) -> None: ...
    def set_alias(self, change: AliasChange) -> None: ...
    def add_audit(self, at: str, action: str, model: str | None, details: dict[str, Any]) -> int: ...
    def close(self) -> None: ...


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS versions (
        model TEXT NOT NULL, version TEXT NOT NULL, artifact_uri TEXT NOT NULL, sha256 TEXT NOT NULL,
        size_bytes BIGINT NOT NULL, created_at TEXT NOT NULL, parent_version TEXT,
        PRIMARY KEY (model, version))""",
    """CREATE TABLE IF NOT EXISTS aliases (
        model TEXT NOT NULL, alias TEXT NOT NULL, version TEXT NOT NULL, PRIMARY KEY (model, alias))""",
    """CREATE TABLE IF NOT EXISTS alias_history (
        seq {serial}, model TEXT NOT NULL, alias TEXT NOT NULL, from_version TEXT,
        to_version TEXT NOT NULL, at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit (
        id {serial}, at TEXT NOT NULL, action TEXT NOT NULL, model TEXT, details TEXT NOT NULL)""",
]


class _SqlStore:
    """The SQL shared by both databases; subclasses supply the connection and the placeholder."""

    placeholder = "?"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def _create_schema(self) -> None:
        with self._lock:
            cur = self._conn.cursor()
            for statement in _SCHEMA:
                cur.execute(statement.format(serial=self.serial))
            self._conn.commit()

    def _write(self, text: str, params: tuple[Any, ...]) -> Any:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql(text), params)
                self._conn.commit()
            except Exception:
                self._conn.rollback()
                raise
            return cur

    def _rows(self, text: str) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute(text)
            rows = list(cur.fetchall())
            self._conn.commit()
            return rows

    def load(self) -> CatalogSnapshot:
        snap = CatalogSnapshot()
        for row in self._rows(
            "SELECT model, version, artifact_uri, sha256, size_bytes, created_at, parent_version "
            "FROM versions ORDER BY created_at, model, version"
        ):
            snap.versions.append(VersionRecord(row[0], row[1], row[2], row[3], int(row[4]), row[5], row[6]))
        for model, alias, version in self._rows("SELECT model, alias, version FROM aliases"):
            snap.aliases[(model, alias)] = version
        for row in self._rows(
            "SELECT model, alias, from_version, to_version, at FROM alias_history ORDER BY seq"
        ):
            snap.alias_history.append(AliasChange(*row))
        for row in self._rows("SELECT id, at, action, model, details FROM audit ORDER BY id"):
            snap.audit.append(AuditEntry(int(row[0]), row[1], row[2], row[3], json.loads(row[4])))
        return snap

    def add_version(self, record: VersionRecord) -> None:
        self._write(
            "INSERT INTO versions (model, version, artifact_uri, sha256, size_bytes, created_at, "
            "parent_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.model,
                record.version,
                record.artifact_uri,
                record.sha256,
                record.size_bytes,
                record.created_at,
                record.parent_version,
            ),
        )

    def set_alias(self, change: AliasChange) -> None:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(
                    self._sql("DELETE FROM aliases WHERE model = ? AND alias = ?"),
                    (change.model, change.alias),
                )
                cur.execute(
                    self._sql("INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?)"),
                    (change.model, change.alias, change.to_version),
                )
                cur.execute(
                    self._sql(
                        "INSERT INTO alias_history (model, alias, from_version, to_version, at) "
                        "VALUES (?, ?, ?, ?, ?)"
                    ),
                    (change.model, change.alias, change.from_version, change.to_version, change.at),
                )
                self._conn.commit()
            except Exception:
                self._conn.rollback()
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SqliteStore(_SqlStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._create_schema()

    def add_audit(self, at: str, action: str, model: str | None, details: dict[str, Any]) -> int:
        cur = self._write(
            "INSERT INTO audit (at, action, model, details) VALUES (?, ?, ?, ?)",
            (at, action, model, json.dumps(details, sort_keys=True)),
        )
        return int(cur.lastrowid)


class PostgresStore(_SqlStore):
    placeholder = "%s"
    serial = "BIGSERIAL PRIMARY KEY"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        import psycopg  # optional dependency: only needed for a PostgreSQL catalog

        self._conn = psycopg.connect(dsn, connect_timeout=10)
        self._create_schema()

    def add_audit(self, at: str, action: str, model: str | None, details: dict[str, Any]) -> int:
        cur = self._write(
            "INSERT INTO audit (at, action, model, details) VALUES (?, ?, ?, ?) RETURNING id",
            (at, action, model, json.dumps(details, sort_keys=True)),
        )
        return int(cur.fetchone()[0])


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:///rel/path`` is relative, ``sqlite:////abs/path`` absolute (the SQLAlchemy convention)."""
    rest = url[len("sqlite:///") :]
    if not rest:
        raise ValueError(f"no file path in database URL {url!r}")
    return Path(rest)


def open_store(db: str | None, data_dir: Path) -> CatalogStore:
    """Open the store named by ``--db`` (default: ``<data-dir>/catalog.db``)."""
    if not db:
        return SqliteStore(data_dir / "catalog.db")
    if db.startswith("sqlite:///"):
        return SqliteStore(sqlite_path_from_url(db))
    if db.startswith(("postgresql://", "postgres://")):
        return PostgresStore(db)
    raise ValueError(f"unsupported --db {db!r}: use sqlite:///PATH or postgresql://...")
