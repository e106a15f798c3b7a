"""Keep the catalog's database honest: detect damage, recover, and never lose an acknowledged write.

Every store call goes through :meth:`StoreGuard.run`, which holds one lock across the store call *and*
the in-memory update that follows it. The in-memory mirror therefore always holds every acknowledged
write, and a recovery (which takes the same lock) replays a snapshot of it into the recovered database.

Detection: a failed store call is followed by ``store.check()``; a watch loop also checks every
``interval`` seconds (a damaged file is often noticed by nobody until the next read). When the check
fails the gateway logs ``catalog database corrupt: ...`` (SQLite) or ``catalog database unavailable:
...`` (PostgreSQL) at ERROR, keeps serving reads from memory, and recovers (``store.recover``); while
that fails (a server still down) changes are answered 503 and not made, and the loop retries.
Backups (SQLite) are taken by the loop after writes, only from a database that passes its check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sut.errors import ApiError
from sut.gateway.catalog_records import CatalogSnapshot
from sut.gateway.catalog_store import CatalogStore

log = logging.getLogger("sut.gateway.catalog")

T = TypeVar("T")
OK, DEGRADED, RECOVERING = "ok", "degraded", "recovering"


class CatalogUnavailable(ApiError):
    """A change the damaged or unreachable database could not take: not made, not acknowledged."""

    status = 503


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class CatalogHealth:
    """What ``GET /admin/status`` shows under ``catalog``."""

    state: str = OK  # ok | degraded (damage seen, not yet recovered) | recovering
    last_error: str | None = None  # the last problem the check found
    detected_at: str | None = None  # when the last problem was first seen
    recovered_at: str | None = None
    recoveries: int = 0
    last_recovery: str | None = None  # what the last recovery did (backup restored / rebuilt, rows replayed)
    last_backup_at: str | None = None
    checked_at: str | None = None  # the last check that found the database sound

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StoreGuard:
    def __init__(self, store: CatalogStore, snapshot: Callable[[], CatalogSnapshot]) -> None:
        self.store = store
        self.snapshot = snapshot  # the in-memory mirror as a store snapshot (every acknowledged write)
        self.health = CatalogHealth()
        self.lock = asyncio.Lock()
        self._dirty = True  # a write since the last backup (the first backup is taken at once)

    async def run(self, method: Callable[..., T], *args: Any, then: Callable[[T], None] | None = None) -> T:
        """Call ``method`` on the store, then ``then(result)`` (the in-memory update), both under the lock.
        A failure that turns out to be damage triggers a recovery and one retry on the recovered database."""
        async with self.lock:
            try:
                result = await asyncio.to_thread(method, *args)
            except Exception as exc:
                failure = f"{method.__name__}: {type(exc).__name__}: {exc}"
                if self.health.state == OK and not await self._damaged(failure):
                    raise  # the database is sound: the caller says it refused this change
                if not await self._recover():
                    raise CatalogUnavailable(
                        f"catalog database {self.store.failure_word}, the change was not made: "
                        f"{self.health.last_error}"
                    ) from None
                result = await asyncio.to_thread(method, *args)
            if then is not None:
                then(result)
            self._dirty = True
            return result

    async def watch(self, interval: float) -> None:
        """Check every ``interval`` seconds; recover when damaged, else back up after writes."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except Exception as exc:  # the loop must outlive any one failure
                log.warning("catalog database watch: %s: %s", type(exc).__name__, exc)

    async def tick(self) -> None:
        async with self.lock:
            if self.health.state == OK and not await self._damaged("scheduled check"):
                if self._dirty:
                    await self._backup()
                return
            await self._recover()

    async def _damaged(self, context: str) -> bool:
        problem = await asyncio.to_thread(self.store.check)
        if problem is None:
            self.health.checked_at = _now()
            return False
        self._mark_damaged(problem, context)
        return True

    def _mark_damaged(self, problem: str, context: str) -> None:
        if self.health.state == OK:
            self.health.detected_at = _now()
            log.error("catalog database %s: %s (found by %s)", self.store.failure_word, problem, context)
        self.health.state = DEGRADED
        self.health.last_error = problem

    async def _backup(self) -> None:
        try:
            where = await asyncio.to_thread(self.store.backup)
        except Exception as exc:  # a damaged source: the check says why, recovery follows at once
            problem = await asyncio.to_thread(self.store.check)
            self._mark_damaged(problem or f"backup failed: {type(exc).__name__}: {exc}", "backup")
            await self._recover()
            return
        self._dirty = False
        if where is not None:
            self.health.last_backup_at = _now()

    async def _recover(self) -> bool:
        """Recover under the caller's lock; True when the database is sound again."""
        self.health.state = RECOVERING
        try:
            report = await asyncio.to_thread(self.store.recover, self.snapshot())
        except Exception as exc:
            if self.health.last_error is None or "recovery failed" not in self.health.last_error:
                log.warning("catalog database recovery failed (retrying): %s: %s", type(exc).__name__, exc)
            self.health.state = DEGRADED
            self.health.last_error = f"recovery failed: {type(exc).__name__}: {str(exc).strip()}"
            return False
        self.health.state = OK
        self.health.recoveries += 1
        self.health.recovered_at = _now()
        self.health.last_recovery = report
        self._dirty = True  # the next tick backs up the recovered database
        log.warning("catalog database recovered: %s", report)
        return True
