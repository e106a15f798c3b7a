"""The harness-run PostgreSQL server: a real server started, SIGKILLed, restarted with its data, removed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psycopg
import pytest

from harness.postgres import PostgresError, PostgresServer, find_bin_dir
from harness.processes import live_processes

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    try:
        s = PostgresServer()
    except PostgresError as exc:  # the CI image must have the binaries: a failure, never a skip
        pytest.fail(str(exc))
    try:
        yield s
    finally:
        s.close()


def test_kill_is_a_crash_and_a_restart_keeps_committed_data(server: PostgresServer) -> None:
    server.start()
    with psycopg.connect(server.dsn) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (42)")
        conn.commit()
    client = psycopg.connect(server.dsn)
    try:
        pid = server.kill()
        assert not server.running()
        assert not os.path.exists(f"/proc/{pid}") or _state(pid) in ("Z", "")
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")  # the client's backend died with the server
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.dsn, connect_timeout=2)
    finally:
        client.close()
    started = time.monotonic()
    server.start()
    print(f"\nrestart after SIGKILL (crash recovery): {time.monotonic() - started:.2f} s")
    with psycopg.connect(server.dsn) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    assert "database system was interrupted" in server.log_path.read_text()


def test_close_stops_the_server_and_removes_its_directory(server: PostgresServer) -> None:
    server.start()
    root, pid = server.root, server.proc.pid  # type: ignore[union-attr]
    assert root is not None and root.is_dir()
    server.close()
    server.close()  # idempotent
    assert not root.exists()
    assert _state(pid) in ("Z", "")
    assert all(p.pid != pid for p in live_processes())
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn, connect_timeout=2)


def test_killing_a_server_that_is_not_running_says_so(server: PostgresServer) -> None:
    with pytest.raises(PostgresError, match="not running"):
        server.kill()


def test_missing_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SERVINGBDD_PG_BIN", str(tmp_path))
    assert find_bin_dir() != tmp_path  # the real ones are still found elsewhere
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("harness.postgres.Path.glob", lambda self, pattern: iter(()))
    with pytest.raises(PostgresError, match="apt-get install -y postgresql"):
        find_bin_dir()


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
