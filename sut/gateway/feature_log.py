"""The gateway's feature log: the inputs of every served request, with the version that
answered, and the labelled outcomes posted back for the same request ids.

The hot path only appends a tuple to an in-memory buffer (:meth:`FeatureLog.record`); a writer thread
turns the buffer into one batched INSERT every ``flush_interval`` seconds, so inference never waits on
the database. Reads and label updates flush the buffer first, so a request answered a moment ago is
already in the log when its labels arrive.

Storage: SQLite in its own file ``<data-dir>/feature_log.db`` (the high-volume log does not share the
catalog's file), or a ``feature_log`` table in the catalog's PostgreSQL database.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sut.gateway.catalog_store import sqlite_path_from_url

log = logging.getLogger("sut.gateway.feature_log")

FEATURE_LOG_FILE = "feature_log.db"
MAX_PAGE = 10_000

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS feature_log (
        seq {serial}, id TEXT, model TEXT NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
        n_rows INTEGER NOT NULL, n_cols INTEGER NOT NULL, inputs {blob} NOT NULL, labels TEXT)""",
    "CREATE INDEX IF NOT EXISTS feature_log_model_seq ON feature_log (model, seq)",
    "CREATE INDEX IF NOT EXISTS feature_log_model_id ON feature_log (model, id)",
]


@dataclass(frozen=True)
class LabelOutcome:
    accepted: int
    unknown: list[str]
    mismatched: list[str]  # ids whose label count differs from their logged row count


class _Db:
    """One connection, used by one thread at a time (the caller holds ``FeatureLog._db_lock``)."""

    placeholder = "?"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    blob = "BLOB"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        cur = conn.cursor()
        for statement in _SCHEMA:
            cur.execute(statement.format(serial=self.serial, blob=self.blob))
        conn.commit()

    def sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def close(self) -> None:
        self.conn.close()


class _SqliteDb(_Db):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # a log, not the catalog: an fsync per batch is enough
        super().__init__(conn)


class _PostgresDb(_Db):
    placeholder = "%s"
    serial = "BIGSERIAL PRIMARY KEY"
    blob = "BYTEA"

    def __init__(self, dsn: str) -> None:
        import psycopg  # optional dependency: only needed for a PostgreSQL catalog

        super().__init__(psycopg.connect(dsn, connect_timeout=10))


def _packed(inputs: np.ndarray) -> tuple[int, int, bytes]:
    """(rows, columns, FP32 bytes): far cheaper to write than JSON (a scalar is one row of one value)."""
    array = np.asarray(inputs, dtype=np.float32)
    array = array.reshape(1, 1) if array.ndim == 0 else array.reshape(array.shape[0], -1)
    return array.shape[0], array.shape[1], array.tobytes()


def _unpacked(n_rows: int, n_cols: int, data: bytes) -> list[list[float]]:
    return np.frombuffer(bytes(data), dtype=np.float32).reshape(n_rows, n_cols).astype(np.float64).tolist()


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FeatureLog:
    def __init__(self, db: _Db, flush_interval: float = 0.05) -> None:
        self._db = db
        self._db_lock = threading.Lock()
        self._pending: deque[tuple[str | None, str, str, float, np.ndarray]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_interval = flush_interval
        self._thread = threading.Thread(target=self._writer, name="feature-log-writer", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, db: str | None, data_dir: Path) -> FeatureLog:
        """Beside the catalog named by ``--db``: its own SQLite file, or a table in PostgreSQL."""
        if not db:
            return cls(_SqliteDb(Path(data_dir) / FEATURE_LOG_FILE))
        if db.startswith("sqlite:///"):
            return cls(_SqliteDb(sqlite_path_from_url(db).with_name(FEATURE_LOG_FILE)))
        if db.startswith(("postgresql://", "postgres://")):
            return cls(_PostgresDb(db))
        raise ValueError(f"unsupported --db {db!r}: use sqlite:///PATH or postgresql://...")

    # -- hot path --------------------------------------------------------------------------------
    def record(self, request_id: str | None, model: str, version: str, inputs: np.ndarray) -> None:
        """Queue one served request's inputs (no I/O here; ``deque.append`` is thread-safe)."""
        self._pending.append((request_id, model, version, time.time(), inputs))

    # -- writer ----------------------------------------------------------------------------------
    def _writer(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # the log is best effort: never take the gateway down over it
                log.warning("feature log write failed: %s: %s", type(exc).__name__, exc)

    def flush(self) -> int:
        """Write everything queued so far in one transaction; the number of requests written."""
        with self._db_lock:
            batch = []
            while self._pending:
                request_id, model, version, at, inputs = self._pending.popleft()
                n_rows, n_cols, data = _packed(inputs)
                batch.append((request_id, model, version, _utc(at), n_rows, n_cols, data))
            if not batch:
                return 0
            cur = self._db.conn.cursor()
            try:
                cur.executemany(
                    self._db.sql(
                        "INSERT INTO feature_log (id, model, version, at, n_rows, n_cols, inputs) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    batch,
                )
                self._db.conn.commit()
            except Exception:
                self._db.conn.rollback()
                raise
            return len(batch)

    # -- reads and labels (blocking: call them in a thread) ----------------------------------------
    def rows(self, model: str | None, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        self.flush()
        limit = max(1, min(int(limit), MAX_PAGE))
        where, params = "seq > ?", [after]
        if model is not None:
            where += " AND model = ?"
            params.append(model)
        with self._db_lock:
            cur = self._db.conn.cursor()
            cur.execute(
                self._db.sql(
                    f"SELECT seq, id, model, version, at, n_rows, n_cols, inputs, labels FROM feature_log "
                    f"WHERE {where} "
                    "ORDER BY seq LIMIT ?"
                ),
                (*params, limit),
            )
            fetched = cur.fetchall()
            self._db.conn.commit()
        rows = [
            {
                "seq": int(seq),
                "id": rid,
                "model": m,
                "version": v,
                "at": at,
                "inputs": _unpacked(n_rows, n_cols, inputs),
                "labels": json.loads(labels) if labels is not None else None,
            }
            for seq, rid, m, v, at, n_rows, n_cols, inputs, labels in fetched
        ]
        return {"rows": rows, "last_seq": rows[-1]["seq"] if rows else after}

    def add_labels(self, model: str, labels: list[tuple[str, list[float]]]) -> LabelOutcome:
        """Attach labelled outcomes to the logged requests of ``model`` with these ids."""
        self.flush()
        accepted, unknown, mismatched = 0, [], []
        with self._db_lock:
            cur = self._db.conn.cursor()
            try:
                for request_id, values in labels:
                    cur.execute(
                        self._db.sql("SELECT seq, n_rows FROM feature_log WHERE model = ? AND id = ?"),
                        (model, request_id),
                    )
                    found = cur.fetchall()
                    if not found:
                        unknown.append(request_id)
                        continue
                    matching = [seq for seq, n_rows in found if n_rows == len(values)]
                    if not matching:
                        mismatched.append(request_id)
                        continue
                    for seq in matching:
                        cur.execute(
                            self._db.sql("UPDATE feature_log SET labels = ? WHERE seq = ?"),
                            (json.dumps(values), seq),
                        )
                    accepted += 1
                self._db.conn.commit()
            except Exception:
                self._db.conn.rollback()
                raise
        return LabelOutcome(accepted, unknown, mismatched)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)
        try:
            self.flush()
        except Exception as exc:
            log.warning("feature log final write failed: %s", exc)
        with self._db_lock:
            self._db.close()
