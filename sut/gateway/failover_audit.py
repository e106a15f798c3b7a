"""The provider lock's audit trail: every acquire, release, failover, failback and restore, bounded and
queryable (see :mod:`sut.gateway.failover`)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any


def iso_time(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z"


class FailoverAudit:
    """A bounded, queryable trail; the oldest entries go first, and how many went is counted."""

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.entries: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self.next_id = 1

    def add(self, model: str, action: str, **details: Any) -> dict[str, Any]:
        wall = time.time()
        entry = {
            "id": self.next_id,
            "at": iso_time(wall),
            "t": wall,
            "model": model,
            "action": action,
            **details,
        }
        self.next_id += 1
        self.entries.append(entry)
        while len(self.entries) > self.limit:
            self.entries.popleft()
            self.dropped += 1
        return entry

    def query(
        self, model: str | None = None, action: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        picked = [
            e
            for e in self.entries
            if (model is None or e["model"] == model) and (action is None or e["action"] == action)
        ]
        return picked[-limit:] if limit else picked

    def document(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "dropped": self.dropped,
            "next_id": self.next_id,
            "entries": list(self.entries),
        }

    def restore(self, doc: dict[str, Any]) -> None:
        entries = [e for e in doc.get("entries", []) if isinstance(e, dict)]
        self.dropped = int(doc.get("dropped", 0))
        self.next_id = max(
            int(doc.get("next_id", 1)), 1 + max((int(e.get("id", 0)) for e in entries), default=0)
        )
        self.entries = deque(entries)
        while len(self.entries) > self.limit:  # a smaller limit than the previous run's
            self.entries.popleft()
            self.dropped += 1
