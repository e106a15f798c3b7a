"""The catalog in one SQLite file: quick checks, verified backups, and recovery from a damaged file."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from sut.gateway.catalog_records import CatalogSnapshot
from sut.gateway.catalog_sql import SqlStore

log = logging.getLogger("sut.gateway.catalog")


class SqliteStore(SqlStore):
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
