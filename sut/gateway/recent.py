"""The gateway's recent answers per model version: raw (time, status, latency) records, kept briefly.

The Prometheus histogram answers "how many, roughly how slow, since the start"; the canary controller and
the alert rules need "error rate and p99 of this version since that instant", exactly. ``GatewayMetrics``
feeds every answer it counts into :class:`RecentAnswers` as well, so both read the same measurements.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

KEEP_S = 120.0  # records older than this are dropped
MAX_RECORDS = 50_000  # per model version: bounds memory under any rate


@dataclass(frozen=True)
class WindowStats:
    requests: int
    errors: int  # server errors (5xx): what a broken version produces; client 4xx are not its fault
    p99_s: float | None  # None without samples

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p99_ms": None if self.p99_s is None else round(self.p99_s * 1000, 2),
        }


def p99(latencies: list[float]) -> float | None:
    """Nearest-rank 99th percentile (the smallest value with at least 99 % of samples at or below it)."""
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class RecentAnswers:
    def __init__(self, keep_s: float = KEEP_S, max_records: int = MAX_RECORDS) -> None:
        self.keep_s = keep_s
        self._records: dict[tuple[str, str], deque[tuple[float, int, float]]] = {}
        self._max = max_records

    def add(self, model: str, version: str, status: int, seconds: float) -> None:
        key = (model, version)
        records = self._records.get(key)
        if records is None:
            records = self._records[key] = deque(maxlen=self._max)
        now = time.monotonic()
        records.append((now, status, seconds))
        while records and records[0][0] < now - self.keep_s:
            records.popleft()

    def stats(self, model: str, version: str, since: float) -> WindowStats:
        """Answers of ``version`` recorded at or after ``since`` (``time.monotonic()`` seconds)."""
        records = self._records.get((model, version), ())
        picked = [(status, seconds) for at, status, seconds in records if at >= since]
        errors = sum(1 for status, _ in picked if status >= 500)
        return WindowStats(len(picked), errors, p99([seconds for _, seconds in picked]))
