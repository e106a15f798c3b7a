"""Load shapes as a user-count schedule: sustained, ramp, burst, spike.

A shape compiles to a :class:`Schedule`: steps ``(at_s, users, spawn_rate)`` and an end. The
locustfile's ``LoadTestShape`` looks the current step up once a second (Locust's tick) and Locust
starts or stops users at ``spawn_rate`` per second to reach the step's count; the run ends at
``end_s``. The schedule is plain data (JSON in ``SERVINGBDD_LOAD_SCHEDULE``), so the same numbers are
what a report draws and what a test checks.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

#: A jump "at once" (burst, spike, start of a sustained run) spawns its users within this many seconds.
JUMP_S = 0.1


@dataclass(frozen=True)
class Step:
    at_s: float  # from the start of the run
    users: int
    spawn_rate: float  # users started (or stopped) per second to reach ``users``


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...]
    end_s: float

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0].at_s != 0:
            raise ValueError("a schedule starts with a step at 0 s")
        if any(b.at_s <= a.at_s for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("schedule steps must be in increasing time order")
        if self.end_s <= self.steps[-1].at_s:
            raise ValueError(f"the schedule ends ({self.end_s} s) before its last step begins")
        if any(s.users < 0 or s.spawn_rate <= 0 for s in self.steps):
            raise ValueError("every step needs users >= 0 and a spawn rate > 0")

    def users_at(self, t: float) -> int | None:
        """The user count the schedule asks for at ``t`` s; None once it has ended."""
        if t >= self.end_s:
            return None
        index = bisect.bisect_right([s.at_s for s in self.steps], t) - 1
        return self.steps[max(index, 0)].users

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.steps)

    def to_json(self) -> dict:
        return {"end_s": self.end_s, "steps": [[s.at_s, s.users, s.spawn_rate] for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict) -> Schedule:
        return cls(tuple(Step(float(a), int(u), float(r)) for a, u, r in data["steps"]), float(data["end_s"]))


def _jump(users_from: int, users_to: int) -> float:
    return max(1.0, abs(users_to - users_from) / JUMP_S)


def _positive(**values: float) -> None:
    bad = {k: v for k, v in values.items() if not v > 0}
    if bad:
        raise ValueError("must be > 0: " + ", ".join(f"{k}={v}" for k, v in bad.items()))


def sustained(users: int, duration_s: float, spawn_rate: float | None = None) -> Schedule:
    """``users`` users from the start (all at once, or at ``spawn_rate``) for ``duration_s``."""
    _positive(users=users, duration_s=duration_s)
    return Schedule((Step(0.0, users, spawn_rate or _jump(0, users)),), float(duration_s))


def ramp(from_users: int, to_users: int, duration_s: float, steps: int = 0, hold_s: float = 0.0) -> Schedule:
    """From ``from_users`` to ``to_users`` over ``duration_s``, then ``hold_s`` at ``to_users``.

    ``steps`` = 0: linear (a new count every second, spawned over that second); ``steps`` = n >= 2: n
    levels evenly spaced from ``from_users`` to ``to_users``, each jumped to at once and held
    ``duration_s / n``.
    """
    _positive(duration_s=duration_s)
    if from_users < 0 or to_users < 1 or steps < 0 or steps == 1 or hold_s < 0:
        raise ValueError(
            f"ramp needs from_users >= 0, to_users >= 1, steps 0 (linear) or >= 2, hold_s >= 0"
            f" (got {from_users}, {to_users}, {steps}, {hold_s})"
        )
    out: list[Step] = []
    previous = 0
    if steps == 0:
        seconds = max(1, math.ceil(duration_s))
        for i in range(seconds + 1):
            t = min(float(i), float(duration_s))
            users = round(from_users + (to_users - from_users) * t / duration_s)
            if out and (users == out[-1].users or t == out[-1].at_s):
                continue
            rate = _jump(previous, users) if i == 0 else max(1.0, abs(users - previous))
            out.append(Step(t, users, rate))
            previous = users
    else:
        for i in range(steps):
            users = round(from_users + (to_users - from_users) * i / (steps - 1))
            out.append(Step(duration_s * i / steps, users, _jump(previous, users)))
            previous = users
    end = float(duration_s) + hold_s
    if end <= out[-1].at_s:
        end = out[-1].at_s + 1.0  # the last level is held for at least one tick
    return Schedule(tuple(out), end)


def burst(users: int, every_s: float, hold_s: float, repeats: int, base_users: int = 0) -> Schedule:
    """``repeats`` times, every ``every_s``: ``users`` more users at once for ``hold_s``, over a base."""
    _positive(users=users, every_s=every_s, hold_s=hold_s, repeats=repeats)
    if hold_s >= every_s or base_users < 0:
        raise ValueError(f"burst needs hold_s < every_s and base_users >= 0 (got {hold_s}, {every_s})")
    out: list[Step] = []
    for k in range(repeats):
        start = k * every_s
        out.append(Step(start, base_users + users, _jump(base_users, base_users + users)))
        out.append(Step(start + hold_s, base_users, _jump(base_users + users, base_users)))
    return Schedule(tuple(out), repeats * every_s)


def spike(users: int, factor: float, at_s: float, for_s: float, duration_s: float) -> Schedule:
    """``users`` steady, ``users * factor`` from ``at_s`` for ``for_s``, then ``users`` to ``duration_s``."""
    _positive(users=users, factor=factor, at_s=at_s, for_s=for_s, duration_s=duration_s)
    peak = max(1, round(users * factor))
    if at_s + for_s >= duration_s:
        raise ValueError(f"the spike ({at_s} + {for_s} s) must end before the run ({duration_s} s)")
    return Schedule(
        (
            Step(0.0, users, _jump(0, users)),
            Step(float(at_s), peak, _jump(users, peak)),
            Step(float(at_s + for_s), users, _jump(peak, users)),
        ),
        float(duration_s),
    )
