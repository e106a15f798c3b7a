"""The catalog in a PostgreSQL server: a lost server fails the check; recovery reconnects and replays."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from sut.gateway.catalog_records import CatalogSnapshot
from sut.gateway.catalog_sql import SqlStore


class PostgresStore(SqlStore):
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
