"""Shadow mode: a copy of each request goes to the shadow version; its answer is compared, never returned.

The copy leaves after the primary answered (the client already has its answer: nothing the shadow does
can delay or fail it) and runs in a background task, at most ``max_in_flight`` at a time: a shadow that is
slow or down costs the gateway a bounded number of tasks, and copies beyond that are dropped and counted.
Agreement: every output tensor of the two answers has the same shape and its values differ by at most the
policy's ``tolerance`` (absolute).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sut.errors import ApiError
from sut.gateway.recent import p99
from sut.gateway.routing import Router, Upstream

log = logging.getLogger("sut.gateway.shadow")

MAX_LATENCIES = 20_000


@dataclass
class ShadowReport:
    primary: str | None = None
    shadow: str | None = None
    tolerance: float = 0.0
    requests: int = 0  # primary answers while the policy was on (each one is a candidate copy)
    copies_sent: int = 0
    copies_dropped: int = 0  # more copies in flight than allowed: not sent
    shadow_ok: int = 0
    shadow_errors: dict[str, int] = field(default_factory=dict)  # status -> count
    compared: int = 0  # both answers 200
    agreed: int = 0
    max_abs_diff: float = 0.0
    shadow_latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.shadow_latencies)
        return {
            "primary": self.primary,
            "shadow": self.shadow,
            "tolerance": self.tolerance,
            "requests": self.requests,
            "copies_sent": self.copies_sent,
            "copies_dropped": self.copies_dropped,
            "copy_ratio": round(self.copies_sent / self.requests, 4) if self.requests else None,
            "shadow_ok": self.shadow_ok,
            "shadow_errors": dict(self.shadow_errors),
            "compared": self.compared,
            "agreed": self.agreed,
            "disagreed": self.compared - self.agreed,
            "agreement_rate": round(self.agreed / self.compared, 4) if self.compared else None,
            "max_abs_diff": self.max_abs_diff,
            "shadow_latency_ms": {
                "p50": round(ordered[len(ordered) // 2] * 1000, 2) if ordered else None,
                "p99": round((p99(ordered) or 0.0) * 1000, 2) if ordered else None,
            },
        }


class ShadowCopies:
    def __init__(self, router: Router, max_in_flight: int = 256) -> None:
        self.router = router
        self.max_in_flight = max_in_flight
        self.reports: dict[str, ShadowReport] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def report(self, model: str, primary: str | None, shadow: str, tolerance: float) -> ShadowReport:
        """The model's report; a new one when the policy's versions or tolerance changed."""
        current = self.reports.get(model)
        if current is None or (current.primary, current.shadow, current.tolerance) != (
            primary,
            shadow,
            tolerance,
        ):
            current = self.reports[model] = ShadowReport(primary, shadow, tolerance)
        return current

    def copy(
        self, model: str, primary: str, shadow: str, tolerance: float, body: bytes, answer: Upstream
    ) -> None:
        """Send ``body`` to the shadow version in the background (never awaited by the client's request)."""
        report = self.report(model, primary, shadow, tolerance)
        report.requests += 1
        if len(self._tasks) >= self.max_in_flight:
            report.copies_dropped += 1
            return
        report.copies_sent += 1
        task = asyncio.get_running_loop().create_task(self._send(model, shadow, body, answer, report))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, model: str, shadow: str, body: bytes, primary: Upstream, report: ShadowReport
    ) -> None:
        started = time.perf_counter()
        try:
            answer = await self.router.infer(model, shadow, body)
            status, content = answer.status, answer.body
        except ApiError as exc:
            status, content = exc.status, b""
        except Exception as exc:  # a copy must never take the gateway down
            log.warning("shadow copy to %s v%s failed: %s: %s", model, shadow, type(exc).__name__, exc)
            status, content = 0, b""
        if len(report.shadow_latencies) < MAX_LATENCIES:
            report.shadow_latencies.append(time.perf_counter() - started)
        if status != 200:
            report.shadow_errors[str(status)] = report.shadow_errors.get(str(status), 0) + 1
            return
        report.shadow_ok += 1
        if primary.status != 200:
            return
        diff = _max_abs_diff(primary.body, content)
        report.compared += 1
        if diff is not None and diff <= report.tolerance:
            report.agreed += 1
        if diff is not None:
            report.max_abs_diff = max(report.max_abs_diff, diff)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _max_abs_diff(primary: bytes, shadow: bytes) -> float | None:
    """The largest absolute difference between the two answers' outputs; None when they cannot be compared
    (other output names or shapes, unparsable): that counts as a disagreement."""
    try:
        a, b = _outputs(primary), _outputs(shadow)
    except (ValueError, KeyError, TypeError):
        return None
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return None
    return max((float(np.max(np.abs(a[k] - b[k]))) if a[k].size else 0.0 for k in a), default=0.0)


def _outputs(body: bytes) -> dict[str, np.ndarray]:
    payload = json.loads(body)
    return {
        o["name"]: np.asarray(o["data"], dtype=np.float64).reshape(o["shape"]) for o in payload["outputs"]
    }
