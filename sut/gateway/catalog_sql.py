"""The catalog's tables and the SQL both databases share (SQLite and PostgreSQL): schema, load, writes and
the replay (``sync``) a recovery runs (see :mod:`sut.gateway.catalog_store`)."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from sut.gateway.catalog_records import AliasChange, AuditEntry, CatalogSnapshot, VersionRecord

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
    """CREATE TABLE IF NOT EXISTS settings (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS routing (
        model TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at TEXT NOT NULL)""",
]


class SqlStore:
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
                self._rollback()
                raise
            return cur

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection cannot roll back: the error is the first one
            self._conn.rollback()

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
        for key, value in self._rows("SELECT key, value FROM settings"):
            snap.settings[key] = value
        for model, config in self._rows("SELECT model, config FROM routing"):
            snap.routing[model] = json.loads(config)
        return snap

    def put_setting(self, key: str, value: str | None) -> None:
        """Replace (None: remove) one setting, in one transaction."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql("DELETE FROM settings WHERE key = ?"), (key,))
                if value is not None:
                    cur.execute(self._sql("INSERT INTO settings (key, value) VALUES (?, ?)"), (key, value))
                self._conn.commit()
            except Exception:
                self._rollback()
                raise

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
                self._rollback()
                raise

    def set_routing(self, model: str, config: dict[str, Any] | None, at: str) -> None:
        """Replace a model's routing configuration (None removes it)."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql("DELETE FROM routing WHERE model = ?"), (model,))
                if config is not None:
                    cur.execute(
                        self._sql("INSERT INTO routing (model, config, updated_at) VALUES (?, ?, ?)"),
                        (model, json.dumps(config, sort_keys=True), at),
                    )
                self._conn.commit()
            except Exception:
                self._rollback()
                raise

    def sync(self, snapshot: CatalogSnapshot) -> dict[str, int]:
        """Make the database hold everything in ``snapshot`` (the in-memory mirror: every acknowledged
        write): missing versions and audit entries are added, aliases and alias history rewritten. Rows
        the database has beyond the snapshot stay. Returns how many rows of each kind were replayed."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                replayed = self._sync(cur, snapshot)
                self._conn.commit()
            except Exception:
                self._rollback()
                raise
        return replayed

    def _sync(self, cur: Any, snap: CatalogSnapshot) -> dict[str, int]:
        cur.execute("SELECT model, version FROM versions")
        have = {(row[0], row[1]) for row in cur.fetchall()}
        missing = [r for r in snap.versions if (r.model, r.version) not in have]
        for r in missing:
            cur.execute(
                self._sql(
                    "INSERT INTO versions (model, version, artifact_uri, sha256, size_bytes, created_at, "
                    "parent_version) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (r.model, r.version, r.artifact_uri, r.sha256, r.size_bytes, r.created_at, r.parent_version),
            )
        cur.execute("DELETE FROM aliases")
        for (model, alias), version in snap.aliases.items():
            cur.execute(
                self._sql("INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?)"),
                (model, alias, version),
            )
        cur.execute("SELECT COUNT(*) FROM alias_history")
        history_before = int(cur.fetchone()[0])
        cur.execute("DELETE FROM alias_history")
        for c in snap.alias_history:
            cur.execute(
                self._sql(
                    "INSERT INTO alias_history (model, alias, from_version, to_version, at) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                (c.model, c.alias, c.from_version, c.to_version, c.at),
            )
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM audit")
        last_id = int(cur.fetchone()[0])
        newer = [e for e in snap.audit if e.id > last_id]
        for e in newer:
            cur.execute(
                self._sql("INSERT INTO audit (id, at, action, model, details) VALUES (?, ?, ?, ?, ?)"),
                (e.id, e.at, e.action, e.model, json.dumps(e.details, sort_keys=True)),
            )
        self._after_explicit_ids(cur)
        cur.execute("DELETE FROM settings")
        for key, value in snap.settings.items():
            cur.execute(self._sql("INSERT INTO settings (key, value) VALUES (?, ?)"), (key, value))
        cur.execute("DELETE FROM routing")
        for model, config in snap.routing.items():
            cur.execute(
                self._sql("INSERT INTO routing (model, config, updated_at) VALUES (?, ?, ?)"),
                (model, json.dumps(config, sort_keys=True), "replayed"),
            )
        return {
            "versions": len(missing),
            "aliases": len(snap.aliases),
            "alias_history": max(0, len(snap.alias_history) - history_before),
            "audit": len(newer),
            "settings": len(snap.settings),
            "routing": len(snap.routing),
        }

    def _after_explicit_ids(self, cur: Any) -> None:
        """Hook: PostgreSQL's sequences ignore explicitly inserted ids (SQLite's AUTOINCREMENT does not)."""

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()
