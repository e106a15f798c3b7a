"""Persistence of the model catalog behind one small interface (SQLite by default, PostgreSQL by DSN).

The gateway serves every read from its in-memory mirror (``catalog.Catalog``); the store is only
written to and read once at startup. Beyond the writes, a store can ``check`` itself (a damaged SQLite
file, a PostgreSQL server gone), ``backup`` itself, and ``recover``: get a working database again and
``sync`` into it everything the in-memory mirror holds (see ``catalog_recovery``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("sut.gateway.catalog")


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


class CatalogStore(Protocol):
    """What the catalog needs from a database. Every method is blocking; callers run it in a thread."""

    def load(self) -> CatalogSnapshot: ...
    def add_version(self, record: VersionRecord) -> None: ...
    def set_alias(self, change: AliasChange) -> None: ...
    def add_audit(self, at: str, action: str, model: str | None, details: dict[str, Any]) -> int: ...
    def put_setting(self, key: str, value: str | None) -> None: ...
    def set_routing(self, model: str, config: dict[str, Any] | None, at: str) -> None: ...
    def close(self) -> None: ...

    #: how a failed check is named in the log: "corrupt" (a damaged file) or "unavailable" (a lost server)
    failure_word: str

    def check(self) -> str | None:
        """None when the database is sound, else what is wrong with it (one line)."""
        ...

    def backup(self) -> str | None:
        """Take a verified copy of the database, if this kind of store keeps one; where it went."""
        ...

    def recover(self, snapshot: CatalogSnapshot) -> str:
        """Get a working database again, holding at least ``snapshot``; say what was done. Raises if not."""
        ...


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


class SqliteStore(_SqlStore):
    """The catalog in one SQLite file, with a verified online backup in ``<data-dir>/backups/``.

    Rollback-journal mode (not WAL): every committed write is in the main file, so a damaged file is
    seen by the next check instead of being hidden (or silently overwritten) by pages still in a WAL.
    """

    failure_word = "corrupt"

    def __init__(self, path: Path, backup_dir: Path | None = None) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.backup_dir = backup_dir if backup_dir is not None else path.parent / "backups"
        self.backup_path = self.backup_dir / f"{path.name}.backup"
        try:
            self._conn = self._connect()
            self._create_schema()
        except sqlite3.DatabaseError as exc:  # damaged before we started: only a good backup saves it
            if not self._backup_is_good():
                raise
            log.error("catalog database %s: %s: %s; restoring its last backup", self.failure_word, path, exc)
            self.recover(CatalogSnapshot())

    def load(self) -> CatalogSnapshot:
        try:
            return super().load()
        except sqlite3.DatabaseError as exc:  # damaged pages found at start-up: same rule as in __init__
            if not self._backup_is_good():
                raise
            log.error(
                "catalog database %s: %s: %s; restoring its last backup", self.failure_word, self.path, exc
            )
            self.recover(CatalogSnapshot())
            return super().load()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA journal_mode=DELETE")
        return conn

    def add_audit(self, at: str, action: str, model: str | None, details: dict[str, Any]) -> int:
        cur = self._write(
            "INSERT INTO audit (at, action, model, details) VALUES (?, ?, ?, ?)",
            (at, action, model, json.dumps(details, sort_keys=True)),
        )
        return int(cur.lastrowid)

    # -- damage: check, backup, recover ---------------------------------------------------------------
    def check(self) -> str | None:
        """``PRAGMA quick_check`` on a fresh read-only connection: it reads the file as it is on disk now,
        not the pages this process has cached."""
        if not self.path.exists():
            return f"{self.path} is missing"
        with self._lock:
            return _quick_check(self.path)

    def backup(self) -> str | None:
        """Copy the live database (``Connection.backup``) and keep the copy only if it passes its own
        quick_check: a damaged database never replaces the last good backup."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.backup_dir / f"{self.path.name}.backup.tmp"
        with self._lock:
            dest = sqlite3.connect(str(tmp))
            try:
                self._conn.backup(dest)
            finally:
                dest.close()
            problem = _quick_check(tmp)
            if problem:
                tmp.unlink(missing_ok=True)
                raise sqlite3.DatabaseError(f"backup copy damaged, the last good one is kept: {problem}")
            os.replace(tmp, self.backup_path)
        return str(self.backup_path)

    def _backup_is_good(self) -> bool:
        return self.backup_path.is_file() and _quick_check(self.backup_path) is None

    def recover(self, snapshot: CatalogSnapshot) -> str:
        """Move the damaged file aside, restore the last good backup (else start an empty file), replay
        the snapshot into it, check the result and back it up."""
        with self._lock:
            with contextlib.suppress(Exception):
                self._conn.close()
            aside = self._move_aside()
            restored = self._backup_is_good()
            when = _mtime(self.backup_path) if restored else ""
            source = f"restored the backup of {when}" if restored else "no good backup: rebuilt"
            if restored:
                tmp = self.path.with_name(self.path.name + ".restoring")
                shutil.copyfile(self.backup_path, tmp)
                os.replace(tmp, self.path)
            self._conn = self._connect()
        self._create_schema()
        replayed = self.sync(snapshot)
        problem = self.check()
        if problem:
            raise sqlite3.DatabaseError(f"the recovered database fails its check: {problem}")
        self.backup()
        moved = f"moved the damaged file to {aside.name}; " if aside else ""
        counts = ", ".join(f"{n} {kind}" for kind, n in replayed.items())
        return f"{moved}{source}; replayed from memory: {counts}"

    def _move_aside(self) -> Path | None:
        """``catalog.db`` -> ``catalog.db.corrupt-<ts>``, with its journal: never replayed onto a backup."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1_000_000_000:09d}"
        aside = None
        for suffix in ("", "-journal", "-wal", "-shm"):
            src = self.path.with_name(self.path.name + suffix)
            if src.exists():
                dest = self.path.with_name(f"{self.path.name}.corrupt-{stamp}{suffix}")
                os.replace(src, dest)
                aside = aside or dest
        return aside


def _quick_check(path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None  # a writer holds it: not damage; the next check sees it
        return f"{path}: {exc}"
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        return f"{path}: {exc}"
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    return f"{path}: quick_check: {'; '.join(problems[:3])}" if problems else None


def _mtime(path: Path) -> str:
    stamp = time.gmtime(path.stat().st_mtime)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)


class PostgresStore(_SqlStore):
    """The catalog in a PostgreSQL server. A lost server makes ``check`` fail; ``recover`` reconnects and
    replays the in-memory mirror (committed rows survive a server crash; this covers the rest)."""

    placeholder = "%s"
    serial = "BIGSERIAL PRIMARY KEY"
    failure_word = "unavailable"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        import psycopg  # optional dependency: only needed for a PostgreSQL catalog

        self._psycopg = psycopg
        self.dsn = dsn
        self._conn = psycopg.connect(dsn, connect_timeout=10)
        self._create_schema()

    def add_audit(self, at: str, action: str, model: str | None, details: dict[str, Any]) -> int:
        cur = self._write(
            "INSERT INTO audit (at, action, model, details) VALUES (?, ?, ?, ?) RETURNING id",
            (at, action, model, json.dumps(details, sort_keys=True)),
        )
        return int(cur.fetchone()[0])

    def _after_explicit_ids(self, cur: Any) -> None:
        for table, column in (("audit", "id"), ("alias_history", "seq")):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"(SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}), false)"
            )

    def check(self) -> str | None:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                return f"connection to {_safe_dsn(self.dsn)} lost"
            try:
                self._conn.execute("SELECT 1")
                self._conn.commit()
            except Exception as exc:
                self._rollback()
                return f"{_safe_dsn(self.dsn)}: {type(exc).__name__}: {str(exc).strip()}"
        return None

    def backup(self) -> str | None:
        return None  # the server keeps its own durability (WAL); nothing to copy here

    def recover(self, snapshot: CatalogSnapshot) -> str:
        with self._lock:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._psycopg.connect(self.dsn, connect_timeout=3)
        self._create_schema()
        replayed = self.sync(snapshot)
        counts = ", ".join(f"{n} {kind}" for kind, n in replayed.items())
        return f"reconnected to {_safe_dsn(self.dsn)}; replayed from memory: {counts}"


def _safe_dsn(dsn: str) -> str:
    """The DSN without a password, for logs and answers."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return dsn
    return f"{scheme}{sep}{creds.split(':', 1)[0]}@{host}"


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:///rel/path`` is relative, ``sqlite:////abs/path`` absolute (the SQLAlchemy convention)."""
    rest = url[len("sqlite:///") :]
    if not rest:
        raise ValueError(f"no file path in database URL {url!r}")
    return Path(rest)


def open_store(db: str | None, data_dir: Path) -> CatalogStore:
    """Open the store named by ``--db`` (default: ``<data-dir>/catalog.db``)."""
    if not db:
        return SqliteStore(data_dir / "catalog.db", data_dir / "backups")
    if db.startswith("sqlite:///"):
        return SqliteStore(sqlite_path_from_url(db), data_dir / "backups")
    if db.startswith(("postgresql://", "postgres://")):
        return PostgresStore(db)
    raise ValueError(f"unsupported --db {db!r}: use sqlite:///PATH or postgresql://...")
