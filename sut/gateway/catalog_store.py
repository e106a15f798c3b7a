"""Persistence of the model catalog behind one small interface (SQLite by default, PostgreSQL by DSN).

The gateway serves every read from its in-memory mirror (``catalog.Catalog``); the store is only
written to and read once at startup. Beyond the writes, a store can ``check`` itself (a damaged SQLite
file, a PostgreSQL server gone), ``backup`` itself, and ``recover``: get a working database again and
``sync`` into it everything the in-memory mirror holds (see ``catalog_recovery``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sut.gateway.catalog_postgres import PostgresStore
from sut.gateway.catalog_records import AliasChange, CatalogSnapshot, VersionRecord
from sut.gateway.catalog_sqlite import SqliteStore


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
