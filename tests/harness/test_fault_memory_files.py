"""Memory limits and file corruption on real processes and real SQLite files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest

from harness.faults.files import corrupt_file
from harness.faults.memory import detect_mechanism, limit_process

# Allocates 10 MiB per step and touches it, forever, printing progress.
HOG = """
import sys, time
blocks = []
while True:
    blocks.append(bytearray(10 * 1024 * 1024))
    print(len(blocks) * 10, flush=True)
    time.sleep(0.01)
"""


def test_limit_kills_a_process_that_exceeds_it():
    mechanism = detect_mechanism()
    # The hog waits a moment so the limit is in place before it starts allocating.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time\ntime.sleep(0.3)\n" + HOG], stdout=subprocess.PIPE, text=True
    )
    limit = limit_process(proc.pid, 80 * 1024 * 1024)
    try:
        assert limit.mechanism == mechanism
        out, _ = proc.communicate(timeout=60)
        reached = int(out.split()[-1]) if out.split() else 0
        assert reached < 200, f"the process allocated {reached} MiB under an 80 MiB limit"
        if mechanism.startswith("cgroup"):
            assert proc.returncode == -signal.SIGKILL, f"expected an OOM kill, exit code {proc.returncode}"
            assert limit.oom_kills() >= 1
        else:
            assert proc.returncode != 0  # MemoryError under RLIMIT_AS
    finally:
        if proc.poll() is None:
            proc.kill()
        limit.remove()
    if limit.cgroup is not None:
        assert not limit.cgroup.exists(), "the cgroup was not removed"


def test_limit_leaves_a_small_process_alone():
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.5); print('fine')"],
        stdout=subprocess.PIPE,
        text=True,
    )
    limit = limit_process(proc.pid, 200 * 1024 * 1024)
    try:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and out.strip() == "fine"
        assert limit.oom_kills() == 0
    finally:
        limit.remove()


def _make_db(path, rows=2000):
    con = sqlite3.connect(path)
    con.execute("create table t (id integer primary key, payload text)")
    con.executemany("insert into t (payload) values (?)", [("x" * 200,) for _ in range(rows)])
    con.commit()
    con.close()


def test_header_corruption_makes_sqlite_refuse_the_file(tmp_path):
    db = tmp_path / "catalog.db"
    _make_db(db)
    size = db.stat().st_size
    corruption = corrupt_file(db, mode="header")
    assert db.stat().st_size == size and corruption.offsets == (0,)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite3.connect(db).execute("select count(*) from t").fetchone()


def test_page_corruption_is_detected_by_integrity_check(tmp_path):
    db = tmp_path / "catalog.db"
    _make_db(db)
    corrupt_file(db, mode="pages", pages=5, seed=7)
    with pytest.raises(sqlite3.DatabaseError):
        con = sqlite3.connect(db)
        result = con.execute("pragma integrity_check").fetchall()
        con.execute("select sum(length(payload)) from t").fetchone()
        if result != [("ok",)]:
            raise sqlite3.DatabaseError(f"integrity_check: {result[:3]}")


def test_corruption_is_deterministic_by_seed(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _make_db(a)
    b.write_bytes(a.read_bytes())
    assert corrupt_file(a, mode="pages", seed=3).offsets == corrupt_file(b, mode="pages", seed=3).offsets
    assert a.read_bytes() == b.read_bytes()
