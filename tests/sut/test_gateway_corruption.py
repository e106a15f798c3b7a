"""The catalog database damaged under a running gateway (SQLite file overwritten, PostgreSQL killed).

Real gateway processes; the damage is real (bytes overwritten in the open file, a SIGKILLed server).
What must hold: the gateway notices and says "corrupt" / "unavailable" in its log, keeps serving from
memory, recovers, accepts new versions, and no acknowledged registration is missing, even after a
restart (which reads the catalog back from the database alone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import Cluster, wait_until

from harness.faults.files import corrupt_file
from harness.postgres import PostgresError, PostgresServer
from sut.demo_models import build_demo

pytestmark = pytest.mark.slow

ARTIFACT = "demo/1/model.onnx"


def _catalog(c: Cluster) -> dict[str, Any]:
    return c.get("/admin/status").json()["catalog"]


def _listed(c: Cluster) -> set[tuple[str, str]]:
    return {(m["name"], v) for m in c.get("/admin/models").json() for v in m["versions"]}


def _register_models(c: Cluster, count: int, prefix: str = "m") -> set[tuple[str, str]]:
    for i in range(count):
        c.register_version(f"{prefix}{i:02d}", ARTIFACT)
    return {(f"{prefix}{i:02d}", "1") for i in range(count)}


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _wait_backup(c: Cluster) -> Path:
    backup = c.data_dir / "backups" / "catalog.db.backup"
    wait_until("the first catalog backup", lambda: _catalog(c)["last_backup_at"] is not None, 10)
    assert backup.is_file()
    return backup


def _wait_recovered(c: Cluster, recoveries: int = 1, timeout: float = 10) -> dict[str, Any]:
    wait_until(
        f"{recoveries} catalog recoveries",
        lambda: _catalog(c)["recoveries"] >= recoveries and _catalog(c)["state"] == "ok",
        timeout,
    )
    return _catalog(c)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    build_demo(c.artifact_root, versions=("1",))
    try:
        c.start_gateway()
        yield c
    finally:
        c.close()


@pytest.mark.parametrize("mode", ["header", "pages"])
def test_damaged_file_is_detected_restored_from_backup_and_nothing_acknowledged_is_lost(
    cluster: Cluster, mode: str
) -> None:
    acked = _register_models(cluster, 20)
    _wait_backup(cluster)
    acked |= _register_models(cluster, 3, prefix="after-backup-")  # only in memory and the live file
    damaged_at = time.time()
    damage = corrupt_file(cluster.data_dir / "catalog.db", mode=mode, seed=7)
    health = _wait_recovered(cluster)
    detect_s, recover_s = _at(health["detected_at"]) - damaged_at, _at(health["recovered_at"]) - damaged_at
    print(f"\n{damage.describe()}: detected after {detect_s:.3f} s, recovered after {recover_s:.3f} s")
    assert detect_s < 2.0 and recover_s < 3.0
    assert "restored the backup" in health["last_recovery"], health
    log = cluster.gateway.log()  # type: ignore[union-attr]
    assert "ERROR catalog database corrupt:" in log, log[-2000:]
    assert list(cluster.data_dir.glob("catalog.db.corrupt-*")), "the damaged file was not kept aside"
    assert _listed(cluster) == acked  # served from memory all along
    acked |= _register_models(cluster, 2, prefix="after-recovery-")
    cluster.gateway.stop()  # type: ignore[union-attr]
    cluster.start_gateway()
    assert _listed(cluster) == acked  # the database alone holds every acknowledged registration
    actions = [e["action"] for e in cluster.get("/admin/audit").json()]
    assert actions.count("register_version") == len(acked)


def test_without_a_good_backup_the_database_is_rebuilt_from_memory(cluster: Cluster) -> None:
    acked = _register_models(cluster, 5)
    backup = _wait_backup(cluster)
    corrupt_file(backup, mode="header", seed=1)
    corrupt_file(cluster.data_dir / "catalog.db", mode="header", seed=2)
    health = _wait_recovered(cluster)
    assert "no good backup: rebuilt" in health["last_recovery"], health
    cluster.gateway.stop()  # type: ignore[union-attr]
    cluster.start_gateway()
    assert _listed(cluster) == acked


def _damage(path: Path, **how: Any) -> None:
    """Damage the catalog file as it is now. While the gateway repairs earlier damage the file is briefly
    absent (moved aside, the backup not yet copied back): try again until it is there."""

    def damaged() -> bool:
        try:
            corrupt_file(path, **how)
        except FileNotFoundError:
            return False
        return True

    wait_until(f"{path.name} in place to damage", damaged, 10)


def test_registrations_racing_the_damage_are_answered_and_every_acknowledged_one_survives(
    cluster: Cluster,
) -> None:
    acked = _register_models(cluster, 5)
    _wait_backup(cluster)
    answers: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def register() -> None:
        i = 0
        while not stop.is_set():
            model = f"race{i:03d}"
            r = cluster.post(f"/admin/models/{model}/versions", {"artifact_uri": ARTIFACT})
            answers.append((model, r.status_code, r.text))
            i += 1

    thread = threading.Thread(target=register)
    thread.start()
    try:
        time.sleep(0.5)
        _damage(cluster.data_dir / "catalog.db", mode="pages", pages=4, seed=3)
        time.sleep(0.5)
        _damage(cluster.data_dir / "catalog.db", mode="header", seed=4)
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(30)
    # a write in flight may overwrite the damage before any check sees it; other damage is repaired first
    ended = time.time()
    wait_until(
        "a sound catalog after the damage",
        lambda: (
            _catalog(cluster)["state"] == "ok"
            and _at(_catalog(cluster)["checked_at"] or "1970-01-01T00:00:00Z") > ended
        ),
        10,
    )
    print(f"\n{len(answers)} registrations, {sum(a[1] == 503 for a in answers)} refused; {_catalog(cluster)}")
    refused = [a for a in answers if a[1] != 201]
    assert all(a[1] == 503 and "catalog database" in a[2] for a in refused), refused[:3]
    acked |= {(model, "1") for model, status, _ in answers if status == 201}
    assert len(acked) > 10
    assert _listed(cluster) >= acked
    cluster.gateway.stop()  # type: ignore[union-attr]
    cluster.start_gateway()
    assert _listed(cluster) >= acked, sorted(acked - _listed(cluster))


@pytest.mark.parametrize("mode", ["header", "pages"])
def test_a_gateway_restarted_on_a_damaged_file_restores_its_backup(cluster: Cluster, mode: str) -> None:
    acked = _register_models(cluster, 3)
    _wait_backup(cluster)
    cluster.gateway.stop()  # type: ignore[union-attr]
    corrupt_file(cluster.data_dir / "catalog.db", mode=mode, pages=2)
    cluster.start_gateway()
    assert _listed(cluster) == acked
    assert "catalog database corrupt" in cluster.gateway.log()  # type: ignore[union-attr]


# -- PostgreSQL: the server is killed and restarted ----------------------------------------------------
@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresError as exc:
        pytest.fail(str(exc))  # not a skip: the CI image must have the server binaries
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_a_killed_postgres_is_survived_and_resynced(tmp_path: Path, postgres: PostgresServer) -> None:
    c = Cluster(tmp_path, db=postgres.dsn)
    build_demo(c.artifact_root, versions=("1",))
    try:
        c.start_gateway()
        acked = _register_models(c, 10)
        killed_at = time.time()
        postgres.kill()
        wait_until("the gateway to see the database gone", lambda: _catalog(c)["state"] != "ok", 5)
        health = _catalog(c)
        print(f"\nPostgreSQL kill detected after {_at(health['detected_at']) - killed_at:.3f} s")
        assert "ERROR catalog database unavailable:" in c.gateway.log()  # type: ignore[union-attr]
        assert _listed(c) == acked  # reads from memory
        r = c.post("/admin/models/refused/versions", {"artifact_uri": ARTIFACT})
        assert r.status_code == 503 and "unavailable" in r.json()["error"], r.text
        restarted_at = time.time()
        postgres.start()
        health = _wait_recovered(c, timeout=15)
        print(f"resynced {_at(health['recovered_at']) - restarted_at:.3f} s after the restart")
        acked |= _register_models(c, 2, prefix="after-")
        c.gateway.stop()  # type: ignore[union-attr]
        c.start_gateway()
        assert _listed(c) == acked  # nothing lost, nothing refused slipped in
    finally:
        c.close()
