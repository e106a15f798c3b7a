"""Time-based routing under a really shifted clock: the gateway is restarted with a clock offset (what it
reads at start, see ``sut.gateway.clock``), never a function mocked in the test process. Days are those of
one reference week (Monday 2025-01-06 to Sunday 2025-01-12) in the named time zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import parse

from harness.steps_registry import given, parse_type, then, when
from harness.waiting import during, poll
from harness.world import World
from steps._routing import gateway_time, state

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SHORT = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REFERENCE_MONDAY = datetime(2025, 1, 6)
CLOCK_ENV = "SUT_CLOCK_OFFSET_S"
#: Answers closer than this to the boundary (by the gateway's clock) are not judged (a request in flight).
EDGE_S = 0.1


@parse_type("DaySet")
@parse.with_pattern(r"weekdays|weekends|every day")
def parse_day_set(text: str) -> list[str]:
    return {"weekdays": list(SHORT[:5]), "weekends": list(SHORT[5:]), "every day": list(SHORT)}[text]


@parse_type("Weekday")
@parse.with_pattern(r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday")
def parse_weekday(text: str) -> int:
    return DAYS.index(text.lower())


@parse_type("Clock")
@parse.with_pattern(r"\d{2}:\d{2}(?::\d{2})?")
def parse_clock(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(":")]
    return parts[0], parts[1], parts[2] if len(parts) > 2 else 0


def _rules(world: World) -> list[dict[str, Any]]:
    return state(world).values.setdefault("time_rules", [])


@given(
    '{model:w} is served by version "{version}" from {start:Clock} to {end:Clock} on {days:DaySet}',
    example='Given demo is served by version "2" from 09:00 to 17:00 on weekdays',
    needs=("workers", "admin", "lifecycle"),
)
def time_rule(world: World, model: str, version: str, start: tuple, end: tuple, days: list[str]) -> None:
    """A time rule (applied with the time zone by the next step); the first matching rule wins."""
    world.gateway.live()  # rules are for this cluster's gateway
    rule = {"days": days, "from": f"{start[0]:02d}:{start[1]:02d}", "to": f"{end[0]:02d}:{end[1]:02d}"}
    _rules(world).append({**rule, "version": version})


@given(
    '{model:w} is served by version "{version}" all day on {days:DaySet}',
    example='Given demo is served by version "3" all day on weekends',
    needs=("workers", "admin", "lifecycle"),
)
def all_day_rule(world: World, model: str, version: str, days: list[str]) -> None:
    """A time rule from 00:00 to 24:00 on those days (applied by the step naming the time zone)."""
    world.gateway.live()
    _rules(world).append({"days": days, "from": "00:00", "to": "24:00", "version": version})


@given(
    '{model:w} follows these time rules in the {zone} time zone, and version "{default}" otherwise',
    example='Given demo follows these time rules in the Asia/Tokyo time zone, and version "1" otherwise',
    needs=("workers", "admin", "lifecycle"),
)
def apply_rules(world: World, model: str, zone: str, default: str) -> None:
    """Set the time policy through the admin API (its versions are loaded on every worker)."""
    rules = _rules(world)
    assert rules, "no time rule given before (missing 'Given demo is served by version ... from ... to ...')"
    policy = {"kind": "time", "timezone": zone, "rules": rules, "default": default}
    answer = world.gateway.set_policy(model, policy, reason="time rules")
    assert answer.ok, (
        f"expected the gateway to accept the time rules, it answered {answer.status}: {answer.error}"
    )
    state(world).values["zone"] = zone


@when(
    "the gateway's clock is set to {day:Weekday} {clock:Clock} in {zone}",
    example="When the gateway's clock is set to Wednesday 16:59:45 in Asia/Tokyo",
    needs=("workers", "admin", "lifecycle"),
)
def set_clock(world: World, day: int, clock: tuple, zone: str) -> None:
    """Restart the gateway with the clock offset that makes its clock read that time now (its catalog and
    policies survive; the workers register again and load the policy's versions)."""
    target = (REFERENCE_MONDAY + timedelta(days=day)).replace(hour=clock[0], minute=clock[1], second=clock[2])
    local = target.replace(tzinfo=ZoneInfo(zone))
    assert world.spec is not None, "no cluster started"
    offset = (local.astimezone(UTC) - datetime.now(UTC)).total_seconds()
    # a new gateway process/container at the same address, reading the offset at start (sut.gateway.clock)
    world.restart_service("gateway", env={CLOCK_ENV: repr(offset)})
    state(world).values["clock"] = {"offset": offset, "target": local.timestamp(), "zone": zone}
    _wait_for_workers(world)
    shown = world.gateway.clock()
    drift = gateway_time(shown["now"]) - (time.time() + offset)
    assert abs(drift) < 1.0, (
        f"the gateway's clock reads {shown['now']}, expected offset {offset:.0f} s ({shown})"
    )
    local_now = datetime.fromtimestamp(gateway_time(shown["now"]), ZoneInfo(zone))
    print(f"gateway clock: {shown['now']} ({local_now})")


def _wait_for_workers(world: World) -> None:
    """Until every running worker is listed again holding the versions the model's routing needs."""
    model = next(iter({m for (m, _) in world.artifacts}))

    def ready() -> bool:
        try:
            needed = set(world.gateway.routing(model)["versions_in_use"])
            listed = world.gateway.workers()
        except Exception:
            return False
        held = [{str(m["version"]) for m in w.get("models", []) if m.get("name") == model} for w in listed]
        return len(listed) >= len(world.running_workers()) and all(needed <= h for h in held)

    assert poll(ready, bool, timeout=60.0, interval=0.2), (
        "the workers did not register again with the restarted gateway"
    )


@then(
    'requests for {model:w} are answered by version "{before}" until {clock:Clock} and by version "{after}" '
    "from then on, by the gateway's clock",
    example='Then requests for demo are answered by version "2" until 17:00:00 and by version "1" '
    "from then on, by the gateway's clock",
    needs=("workers", "admin", "lifecycle"),
)
def switch_at(world: World, model: str, before: str, clock: tuple, after: str) -> None:
    """Requests one after the other, 20 ms apart, until 2 s past the boundary (gateway time = client time +
    the offset the gateway was given): every answer before the boundary from ``before``, after it from
    ``after`` (at least 5 each side; answers within 0.1 s of it are not judged)."""
    shifted = state(world).values.get("clock")
    assert shifted, "the gateway's clock was not set in this scenario"
    zone = ZoneInfo(shifted["zone"])
    day = datetime.fromtimestamp(shifted["target"], zone)
    boundary = day.replace(hour=clock[0], minute=clock[1], second=clock[2]).timestamp()
    if boundary < shifted["target"]:
        boundary += 86400  # the next occurrence of that time
    offset = shifted["offset"]
    wait = boundary - (time.time() + offset)
    assert wait > 1.0, f"the gateway's clock is already {-wait:.1f} s past the boundary: set it earlier"
    assert wait < 120, f"the boundary is {wait:.0f} s away by the gateway's clock: set the clock closer"

    def ask() -> tuple[float, str | None, int]:
        """(when it was sent by the gateway's clock, version, status) of one request."""
        answer = world.gateway.infer(model)
        return time.time() + offset - answer.latency_s, answer.model_version, answer.status

    # requests one after the other until 2 s past the boundary: the window's length is read off the
    # gateway's clock once (client wall clock + offset), then timed on the monotonic clock. 20 ms apart
    # still puts dozens on each side of the boundary; back to back, they kept both cores busy for 15 s.
    seen = during(
        ask,
        seconds=boundary + 2.0 - (time.time() + offset),
        what="requests around the boundary",
        interval=0.02,
    )
    early = [(t, v, s) for t, v, s in seen if t < boundary - EDGE_S]
    late = [(t, v, s) for t, v, s in seen if t > boundary + EDGE_S]
    print(
        f"{len(early)} answers before the boundary from {sorted({v for _, v, _ in early})}, {len(late)} "
        "after "
          f"from {sorted({v for _, v, _ in late})}")  # fmt: skip
    assert len(early) >= 5 and len(late) >= 5, (
        f"too few answers around the boundary: {len(early)} / {len(late)}"
    )
    wrong_early = [(round(t - boundary, 2), v, s) for t, v, s in early if v != before or s != 200]
    wrong_late = [(round(t - boundary, 2), v, s) for t, v, s in late if v != after or s != 200]
    assert not wrong_early, (
        f"before the boundary, answers not from {before!r} (s from it, version, status): {wrong_early[:5]}"
    )
    assert not wrong_late, (
        f"after the boundary, answers not from {after!r} (s from it, version, status): {wrong_late[:5]}"
    )
