"""Steps that damage the gateway's catalog database while it runs and judge how the gateway copes.

The damage is real: bytes of the SQLite file the gateway has open are overwritten on disk (through the
backend's ``data_file``), or the PostgreSQL server holding the catalog is SIGKILLed. The steps keep the
registrations the gateway acknowledged (201) and the ones it refused; the Then steps check them against
the catalog, also after a gateway restart, which reads the catalog back from the database alone.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from harness.drivers.gateway import AdminError, Answer
from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import poll
from steps.cluster import start_cluster
from steps.cluster_plan import require_setup

CATALOG_FILE = "catalog.db"
BACKUP_FILE = "backups/catalog.db.backup"
_PAGES = re.compile(r"^(\d+) of its pages$")


@dataclass
class CatalogLedger:
    """What the scenario did to the catalog and what the gateway answered."""

    acknowledged: set[tuple[str, str]] = field(default_factory=set)  # (model, version) answered 201
    refused: dict[tuple[str, str], Answer] = field(default_factory=dict)
    last_batch: list[tuple[str, Answer]] = field(default_factory=list)
    damaged_at: float | None = None
    recoveries_before: int = 0
    next_model: int = 1


_LEDGERS_KEY = pytest.StashKey[CatalogLedger]()


def _ledger(world: World) -> CatalogLedger:
    return world.stash.setdefault(_LEDGERS_KEY, CatalogLedger())


def _catalog_health(world: World) -> dict[str, Any] | None:
    """The gateway's ``catalog`` status, or None when the gateway does not answer."""
    try:
        health = world.gateway.status().get("catalog")
    except AdminError:
        return None
    return health if isinstance(health, dict) else None


def _stamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def _listed(world: World) -> set[tuple[str, str]]:
    return {(m["name"], str(v)) for m in world.gateway.models() for v in m.get("versions", [])}


def _register_models(world: World, count: int) -> list[tuple[str, Answer]]:
    """Register ``count`` new models (version "1" each, the demo artifact); record each answer."""
    ledger = _ledger(world)
    artifact = world.artifacts.get(("demo", "1"))
    assert artifact is not None, "no demo artifact: add 'Given the demo model with versions \"1\"'"
    batch = []
    for _ in range(count):
        model = f"catalog-model-{ledger.next_model:03d}"
        ledger.next_model += 1
        answer = world.gateway.register_version(model, artifact.artifact_uri, version="1")
        _record(ledger, model, answer)
        batch.append((model, answer))
    ledger.last_batch = batch
    return batch


def _record(ledger: CatalogLedger, model: str, answer: Answer) -> None:
    if answer.status == 201:
        ledger.acknowledged.add((model, "1"))
    else:
        ledger.refused[(model, "1")] = answer


def _mark_damage(world: World) -> None:
    ledger = _ledger(world)
    health = _catalog_health(world) or {}
    ledger.recoveries_before = int(health.get("recoveries") or 0)
    ledger.damaged_at = world.mark("catalog_damaged")


# -- Given ------------------------------------------------------------------------------------------
@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}" '
    "with its catalog in a PostgreSQL server",
    example='Given a cluster with 1 worker serving demo version "1" with its catalog in a PostgreSQL server',
    needs=("catalog-db", "admin"),
    setup=True,
    provides=("postgres",),
)
def cluster_with_postgres(world: World, workers: int, model: str, version: str) -> None:
    """A PostgreSQL server (harness-run, on a free port), then the cluster with its catalog there; the same
    as the cluster step with the add-on "the cluster keeps its catalog in a PostgreSQL server"."""
    start_cluster(world, workers, model, version, postgres=True)


@given(
    "the catalog holds {count:d} models",
    example="Given the catalog holds 20 models",
    needs=("catalog-db", "admin"),
)
def catalog_holds(world: World, count: int) -> None:
    """Register models until the catalog lists ``count`` of them (each with version "1"); every
    registration must be acknowledged."""
    already = {name for name, _ in _listed(world)}
    batch = _register_models(world, max(0, count - len(already)))
    refused = [f"{m}: {a.status} {a.error}" for m, a in batch if a.status != 201]
    assert not refused, f"expected every registration to be acknowledged (201), got {refused[:3]}"
    listed = _listed(world)
    _ledger(world).acknowledged |= listed  # the preloaded versions were acknowledged at start-up
    names = {name for name, _ in listed}
    assert len(names) == count, f"expected the catalog to list {count} models, it lists {len(names)}"


@given(
    "the gateway has backed up its catalog",
    example="Given the gateway has backed up its catalog",
    needs=("catalog-db", "admin"),
)
def backed_up(world: World) -> None:
    """Wait (up to 20 s) until the backup file itself holds every write the gateway acknowledged (each
    version, alias and audit entry it lists now, read from the file) and the gateway has stopped backing
    up (its last backup time unchanged for ``BACKUP_SETTLE_S``): a later backup would silently replace a
    copy the scenario damages next."""

    def problem() -> str | None:
        """What keeps the backup from being settled and complete (None: nothing)."""
        stamp = (_catalog_health(world) or {}).get("last_backup_at")
        lacks = _backup_lacks(world) if stamp else "the gateway reports no backup yet"
        if lacks is not None:
            return lacks
        time.sleep(BACKUP_SETTLE_S)
        if (_catalog_health(world) or {}).get("last_backup_at") == stamp and _backup_lacks(world) is None:
            return None
        return "the gateway took another backup meanwhile"

    last = poll(problem, lambda p: p is None, timeout=20.0, interval=0.2)
    assert last is None, f"expected a settled backup holding every acknowledged write within 20 s: {last}"


#: Three of the gateway's database checks (0.5 s apart): a pending write would have been backed up.
BACKUP_SETTLE_S = 1.5


def _backup_lacks(world: World) -> str | None:
    """What the gateway's backup file lacks of what the gateway lists now (None: it holds it all)."""
    import sqlite3

    path = world.data_file("gateway", BACKUP_FILE)
    if not path.is_file():
        return f"no backup file at {path}"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            versions = {(str(m), str(v)) for m, v in db.execute("SELECT model, version FROM versions")}
            audit = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    except sqlite3.Error as exc:
        return f"the backup file cannot be read: {exc}"
    missing = _listed(world) - versions
    if missing:
        return f"the backup lacks versions {sorted(missing)[:5]}"
    audited = len(world.gateway.audit())
    if audit < audited:
        return f"the backup holds {audit} audit entries, the gateway lists {audited}"
    return None


# -- When -------------------------------------------------------------------------------------------
@when(
    "the catalog database file is damaged by overwriting {what}",
    example="When the catalog database file is damaged by overwriting its header",
    needs=("catalog-db", "admin"),
)
def damage_file(world: World, what: str) -> None:
    """Overwrite, in place, "its header" (the first 100 bytes) or "N of its pages" (random 4 KiB pages)
    of the catalog database file the running gateway has open."""
    _mark_damage(world)
    pages = _PAGES.match(what)
    if what == "its header":
        world.corrupt_file("gateway", CATALOG_FILE, "header", seed=5)
    elif pages:
        world.corrupt_file("gateway", CATALOG_FILE, "pages", seed=5, pages=int(pages.group(1)))
    else:
        raise AssertionError(f'unknown damage {what!r}: say "its header" or "N of its pages"')


@when(
    "the catalog database file and its backup are both damaged",
    example="When the catalog database file and its backup are both damaged",
    needs=("catalog-db", "admin"),
)
def damage_file_and_backup(world: World) -> None:
    """Overwrite the header of the backup first, then of the live file: no good backup is left."""
    _mark_damage(world)
    world.corrupt_file("gateway", BACKUP_FILE, "header", seed=6)
    world.corrupt_file("gateway", CATALOG_FILE, "header", seed=7)


@when(
    "new models are registered continuously while the catalog database file is damaged twice",
    example="When new models are registered continuously while the catalog database file is damaged twice",
    needs=("catalog-db", "admin"),
)
def register_during_damage(world: World) -> None:
    """One client registers new models back to back for 2 s; meanwhile 3 pages, then the header, of the
    catalog database file are overwritten. Every answer is recorded."""
    ledger = _ledger(world)
    stop = threading.Event()
    batch: list[tuple[str, Answer]] = []

    def register() -> None:
        while not stop.is_set():
            batch.extend(_register_models(world, 1))

    thread = threading.Thread(target=register, name="registrations", daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        damage_file(world, "3 of its pages")
        time.sleep(0.7)
        world.corrupt_file("gateway", CATALOG_FILE, "header", seed=8)
        time.sleep(0.8)
    finally:
        stop.set()
        thread.join(timeout=60.0)
        world.mark("catalog_damage_ended")
    assert not thread.is_alive(), "a registration hung for more than a minute"
    ledger.last_batch = batch


@when(
    "I register {count:d} more models", example="When I register 3 more models", needs=("catalog-db", "admin")
)
def register_more(world: World, count: int) -> None:
    """Register ``count`` new models (version "1" each); the answers are judged by later steps."""
    _register_models(world, count)


@when(
    "the catalog database server is killed",
    example="When the catalog database server is killed",
    needs=("catalog-db", "admin"),
    requires=("postgres",),
)
def kill_database(world: World) -> None:
    """SIGKILL the PostgreSQL server holding the catalog (postmaster and backends), as a crash would.
    Needs a cluster that keeps its catalog in a PostgreSQL server."""
    require_setup(world, "postgres")
    _mark_damage(world)
    world.kill_database()


@when(
    "the catalog database server is restarted",
    example="When the catalog database server is restarted",
    needs=("catalog-db", "admin"),
    requires=("postgres",),
)
def restart_database(world: World) -> None:
    """Start the killed PostgreSQL server again, same port and data; returns once it accepts connections."""
    require_setup(world, "postgres")
    world.restart_database()
    world.mark("database_restarted")


@when("the gateway is restarted", example="When the gateway is restarted", needs=("catalog-db", "admin"))
def restart_gateway(world: World) -> None:
    """Kill the gateway and start it again: its catalog then comes from the database alone. Returns once it
    is live and the running workers it listed have registered with it again (see also "the gateway is
    restarted and its workers have registered again", which checks that)."""
    world.restart_service("gateway")


# -- Then -------------------------------------------------------------------------------------------
@then(
    "within {seconds:g} seconds the gateway reports its catalog database {word:w}",
    example="Then within 5 seconds the gateway reports its catalog database corrupt",
    needs=("catalog-db", "admin"),
)
def reports_problem(world: World, seconds: float, word: str) -> None:
    """The admin status shows a catalog problem detected after the damage (it may be repaired already),
    and the gateway's log has an ERROR line saying ``catalog database <word>``."""
    ledger = _ledger(world)
    assert ledger.damaged_at is not None, "no damage was done in this scenario"
    damaged_at = ledger.damaged_at

    def detected(h: dict[str, Any] | None) -> bool:
        return h is not None and (_stamp(h.get("detected_at")) or 0) >= damaged_at - 0.05

    health = poll(lambda: _catalog_health(world), detected, timeout=seconds)
    assert health is not None, (
        f"expected the gateway to report its catalog database {word}; it does not answer any more "
        f"(last lines of its log: {world.logs('gateway').splitlines()[-3:]})"
    )
    assert detected(health), f"expected a catalog problem detected within {seconds:g} s, status says {health}"
    errors = [line for line in world.logs("gateway").splitlines() if "ERROR" in line]
    said = [line for line in errors if f"catalog database {word}" in line]
    assert said, (
        f"expected an ERROR line saying 'catalog database {word}' in the gateway log; errors: {errors[-3:]}"
    )


@then(
    "within {seconds:g} seconds the gateway has repaired its catalog database",
    example="Then within 10 seconds the gateway has repaired its catalog database",
    needs=("catalog-db", "admin"),
)
def repaired(world: World, seconds: float) -> None:
    """The admin status shows the catalog database sound again after one more recovery than before."""
    ledger = _ledger(world)

    def done(h: dict[str, Any] | None) -> bool:
        return (
            h is not None
            and h.get("state") == "ok"
            and int(h.get("recoveries") or 0) > ledger.recoveries_before
        )

    health = poll(lambda: _catalog_health(world), done, timeout=seconds)
    assert health is not None, "expected the gateway to answer its admin status; it does not answer any more"
    assert done(health), f"expected the catalog database repaired within {seconds:g} s, status says {health}"


@then(
    "within {seconds:g} seconds the gateway finds its catalog database sound",
    example="Then within 5 seconds the gateway finds its catalog database sound",
    needs=("catalog-db", "admin"),
)
def sound(world: World, seconds: float) -> None:
    """A check of the catalog database that started after the damage ended found it sound (damage that
    a concurrent write overwrote is gone; any other is detected and repaired first)."""
    since = world.marks.get("catalog_damage_ended") or _ledger(world).damaged_at or 0.0

    def done(h: dict[str, Any] | None) -> bool:
        return h is not None and h.get("state") == "ok" and (_stamp(h.get("checked_at")) or 0) > since

    health = poll(lambda: _catalog_health(world), done, timeout=seconds)
    assert health is not None, "expected the gateway to answer its admin status; it does not answer any more"
    assert done(health), f"expected a sound catalog database within {seconds:g} s, status says {health}"


@then(
    "the gateway says it restored its last backup",
    example="Then the gateway says it restored its last backup",
    needs=("catalog-db", "admin"),
)
def restored_backup(world: World) -> None:
    """The last recovery restored the backup (and replayed from memory what came after it)."""
    health = _catalog_health(world) or {}
    assert "restored the backup" in str(health.get("last_recovery")), (
        f"expected the last recovery to restore the backup, the gateway says {health.get('last_recovery')!r}"
    )


@then(
    "the gateway says it rebuilt its catalog from memory",
    example="Then the gateway says it rebuilt its catalog from memory",
    needs=("catalog-db", "admin"),
)
def rebuilt(world: World) -> None:
    """The last recovery found no good backup and rebuilt the database from the in-memory catalog."""
    health = _catalog_health(world) or {}
    assert "rebuilt" in str(health.get("last_recovery")), (
        f"expected the last recovery to rebuild the catalog, the gateway says {health.get('last_recovery')!r}"
    )


@then(
    "the catalog lists every model whose registration was acknowledged",
    example="Then the catalog lists every model whose registration was acknowledged",
    needs=("catalog-db", "admin"),
)
def lists_acknowledged(world: World) -> None:
    """Every (model, version) the gateway answered 201 for in this scenario is listed, none is missing."""
    acknowledged = _ledger(world).acknowledged
    assert acknowledged, "no registration was acknowledged in this scenario"
    listed = _listed(world)
    missing = sorted(acknowledged - listed)
    assert not missing, (
        f"expected all {len(acknowledged)} acknowledged registrations listed; {len(missing)} are missing: "
        f"{missing[:5]}"
    )


@then(
    "no refused registration is listed",
    example="Then no refused registration is listed",
    needs=("catalog-db", "admin"),
)
def refused_not_listed(world: World) -> None:
    """A registration the gateway refused was not made: the catalog does not list it."""
    refused = _ledger(world).refused
    slipped = sorted(set(refused) & _listed(world))
    assert not slipped, f"expected no refused registration in the catalog, it lists {slipped[:5]}"


@then(
    "every registration was acknowledged",
    example="Then every registration was acknowledged",
    needs=("catalog-db", "admin"),
)
def all_acknowledged(world: World) -> None:
    """Each registration of the last batch was answered 201, and the catalog lists it."""
    batch = _ledger(world).last_batch
    assert batch, "no registration was sent (missing a 'When I register ...' step?)"
    bad = [f"{m}: {a.status or 'no answer'} {a.error}" for m, a in batch if a.status != 201]
    assert not bad, (
        f"expected all {len(batch)} registrations acknowledged (201); {len(bad)} were not: {bad[:3]}"
    )
    missing = sorted({(m, "1") for m, _ in batch} - _listed(world))
    assert not missing, f"the gateway acknowledged registrations its catalog does not list: {missing[:5]}"


@then(
    "every registration was refused because the catalog database is {word:w}",
    example="Then every registration was refused because the catalog database is unavailable",
    needs=("catalog-db", "admin"),
)
def all_refused(world: World, word: str) -> None:
    """Each registration of the last batch was answered 503 with an error saying why, and the catalog
    does not list it (refused means not made)."""
    batch = _ledger(world).last_batch
    assert batch, "no registration was sent (missing a 'When I register ...' step?)"
    bad = [
        f"{m}: {a.status or 'no answer'} {a.error}"
        for m, a in batch
        if a.status != 503 or f"catalog database {word}" not in (a.error or "")
    ]
    assert not bad, f"expected every registration refused with 503 'catalog database {word}'; got {bad[:3]}"
    slipped = sorted({(m, "1") for m, _ in batch} & _listed(world))
    assert not slipped, f"the gateway refused registrations its catalog lists anyway: {slipped[:5]}"


@then(
    "every registration was acknowledged or refused saying the catalog database is {word:w}",
    example="Then every registration was acknowledged or refused saying the catalog database is corrupt",
    needs=("catalog-db", "admin"),
)
def acknowledged_or_refused(world: World, word: str) -> None:
    """Each registration of the last batch got an answer: 201, or 503 saying what is wrong (never a hang,
    a lost connection or another error); at least some were acknowledged, and the catalog lists those."""
    batch = _ledger(world).last_batch
    assert batch, "no registration was sent"
    bad = [
        f"{m}: {a.status or 'no answer'} {a.error}"
        for m, a in batch
        if a.status != 201 and (a.status != 503 or f"catalog database {word}" not in (a.error or ""))
    ]
    assert not bad, f"expected 201 or 503 'catalog database {word}' for every registration; got {bad[:3]}"
    assert any(a.status == 201 for _, a in batch), f"none of the {len(batch)} registrations was acknowledged"
    missing = sorted({(m, "1") for m, a in batch if a.status == 201} - _listed(world))
    assert not missing, f"the gateway acknowledged registrations its catalog does not list: {missing[:5]}"
