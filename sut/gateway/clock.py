"""The clock the gateway's time rules read: the system clock plus an offset read once, at start.

Why an offset and not libfaketime: the offset works the same in a local process and in a container
(the offline gateway image has no way to install a preloaded C library), and it shifts only what the
time rules read. libfaketime shifts every clock of the process, including the monotonic one asyncio's
timers, the heartbeat expiry and the deadlines run on, and the wall clock of audit entries, which must
stay comparable with the rest of the cluster. To move the clock, restart the gateway with another offset
(``--clock-offset`` or ``SUT_CLOCK_OFFSET_S``): routing policies are in the catalog and survive it.
``GET /admin/clock`` shows what the gateway believes the time is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

OFFSET_ENV = "SUT_CLOCK_OFFSET_S"


class GatewayClock:
    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = float(offset_s)

    def now(self) -> datetime:
        """The gateway's idea of now (timezone-aware, UTC)."""
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

    def as_dict(self) -> dict[str, Any]:
        now = self.now()
        return {
            "now": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "offset_s": self.offset_s,
            "source": "system clock + offset read at start (--clock-offset / SUT_CLOCK_OFFSET_S)",
        }
