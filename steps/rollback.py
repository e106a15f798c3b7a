"""Emergency rollback: an alert rule on the production version's error rate rolls the model back without a
person; and the manual rollback with its reason. Times come from the gateway's audit trail (when the
alert fired, when production changed) and from the clients' own answers (the last one the failing version
gave), on the same host clock."""

from __future__ import annotations

import time

from harness.steps_registry import given, then, when
from harness.waiting import poll
from harness.world import World
from steps._routing import answers, audit_entries, gateway_time, state, traffic
from steps._support import keep_answer, kept_answer


@given(
    "{model:w} rolls back when its production version's error rate exceeds {pct:g} % over {window:g} seconds "
    "with at least {count:d} requests",
    example="Given demo rolls back when its production version's error rate exceeds 10 % over 5 seconds "
    "with at least 20 requests",
    needs=("workers", "admin"),
)
def alert_rule(world: World, model: str, pct: float, window: float, count: int) -> None:
    """Set the model's alert rule through the admin API (kept in the catalog)."""
    rule = {"max_error_rate": pct / 100, "window_s": window, "min_requests": count}
    answer = world.gateway.set_alert(model, rule)
    assert answer.ok, (
        f"expected the gateway to accept the alert rule, it answered {answer.status}: {answer.error}"
    )


@then(
    "within {seconds:d} seconds the alert on {model:w} fires and {model2:w} is rolled back to version "
    '"{version}"',
    example='Then within 30 seconds the alert on demo fires and demo is rolled back to version "2"',
    needs=("workers", "admin"),
)
def alert_rolled_back(world: World, seconds: int, model: str, model2: str, version: str) -> None:
    """The gateway's audit trail has an ``alert_fired`` entry (actor ``alert``) followed by a rollback by the
    alert to ``version``, and production is ``version``."""
    assert model == model2, f"one model per step: {model} vs {model2}"

    def done() -> dict | None:
        rollbacks = [
            e for e in audit_entries(world, model, "rollback") if e["details"].get("actor") == "alert"
        ]
        return rollbacks[-1] if rollbacks else None

    rollback = poll(done, bool, timeout=seconds, interval=0.2)
    fired = audit_entries(world, model, "alert_fired")
    assert fired, (
        f"expected the alert on {model} to fire within {seconds} s; no alert_fired entry in the audit"
    )
    assert rollback, (
        f"the alert fired ({fired[-1]['details'].get('reason')}) but no rollback by the alert followed"
    )
    details = rollback["details"]
    print(f"alert: {fired[-1]['at']} {fired[-1]['details'].get('reason')}")
    print(
        f"rollback by the alert: {details.get('from_version')} -> {details.get('to_version')} at "
        f"{rollback['at']}"
    )
    assert details.get("to_version") == version, (
        f"expected the alert to roll {model} back to version {version!r}; it rolled back to "
        f"{details.get('to_version')!r}"
    )
    production = world.gateway.routing(model)["production"]
    assert production == version, (
        f"expected production {version!r} after the rollback, the gateway says {production!r}"
    )
    state(world).values["alert"] = {
        "fired_at": gateway_time(fired[-1]["at"]),
        "failing": details.get("from_version"),
        "version": version,
    }


def _flip_time(world: World, model: str, version: str, after: float) -> float | None:
    """When production moved to ``version`` after ``after`` (the gateway's set_alias audit entry)."""
    for entry in audit_entries(world, model, "set_alias"):
        at = gateway_time(entry["at"])
        if entry["details"].get("to_version") == version and at >= after - 0.001:
            return at
    return None


@then(
    '{model:w} was back on version "{version}" within {seconds:g} second of the alert',
    example='Then demo was back on version "2" within 1 second of the alert',
    needs=("workers", "admin"),
)
def back_within(world: World, model: str, version: str, seconds: float) -> None:
    """From the alert to the production alias flip (audit) and to the start of the last request the failing
    version answered (clients): both below ``seconds``. Printed."""
    alert = state(world).values.get("alert")
    assert alert, "no alert-driven rollback was seen in this scenario"
    flipped = _flip_time(world, model, version, alert["fired_at"])
    assert flipped is not None, f"no change of production to {version!r} after the alert in the audit trail"
    flow = traffic(world, model)
    flow.wait_for(len(flow.answers()) + 40, timeout=30)
    failing = [a for a in answers(world) if a.version == alert["failing"]]
    last = max((a.started for a in failing), default=alert["fired_at"])
    to_flip, to_last = flipped - alert["fired_at"], last - alert["fired_at"]
    print(
        f"alert -> production back on {version}: {to_flip * 1000:.0f} ms; alert -> last request answered "
        "by "
          f"{alert['failing']}: {to_last * 1000:.0f} ms")  # fmt: skip
    assert to_flip < seconds, f"production went back to {version!r} {to_flip:.2f} s after the alert"
    assert to_last < seconds, (
        f"version {alert['failing']!r} still answered a request {to_last:.2f} s after the alert"
    )
    state(world).values["alert"]["flipped_at"] = flipped


@then(
    "no request failed except those the failing version answered before it was rolled back",
    example="Then no request failed except those the failing version answered before it was rolled back",
    needs=("workers", "admin"),
)
def failures_only_from_failing(world: World) -> None:
    """Every failed answer names the failing version and started before production was flipped back (plus
    0.1 s for requests already routed); after that, at least 20 answers and none failed."""
    alert = state(world).values.get("alert", {})
    assert "flipped_at" in alert, "no rollback time measured (missing the 'was back on version' step?)"
    flow = traffic(world, state(world).traffic.model)  # type: ignore[union-attr]
    flow.stop()
    picked = answers(world)
    failed = [a for a in picked if not a.ok]
    stray = [a for a in failed if a.version != alert["failing"] or a.started > alert["flipped_at"] + 0.1]
    before_alert = sum(1 for a in failed if a.started <= alert["fired_at"])
    print(f"failed answers: {len(failed)} of {len(picked)} ({before_alert} before the alert fired)")
    assert not stray, (
        "requests failed that the failing version did not answer before the rollback: "
        + ", ".join(
            f"{a.request_id} {a.status} from {a.version!r} at +{a.started - alert['fired_at']:.2f} s"
            for a in stray[:5]
        )
    )
    after = [a for a in picked if a.started > alert["flipped_at"] + 0.1]
    assert len(after) >= 20, f"expected at least 20 answers after the rollback, got {len(after)}"


@when(
    'I roll back {model:w} because "{reason}"',
    example='When I roll back demo because "customers report wrong prices"',
    needs=("workers", "admin"),
)
def rollback_because(world: World, model: str, reason: str) -> None:
    """A manual rollback through the admin API, giving the reason (kept in the audit trail)."""
    world.mark("rollback_started")
    answer = world.gateway.rollback_because(model, reason)
    world.mark("rollback_ended")
    keep_answer(world, "rollback", answer)
    state(world).marks["rollback"] = time.time()


@then(
    "the {window:w} of {model:w} took less than {seconds:d} seconds",
    example="Then the swap of demo took less than 60 seconds",
    needs=("workers", "admin"),
)
def took_less_than(world: World, window: str, model: str, seconds: int) -> None:
    """The swap/rollback's admin call, timed by the client (and the gateway's own ``duration_s``, printed
    beside it), was answered within ``seconds``; the seed's bounds: 60 s for a swap, 30 s for a rollback."""
    answer = kept_answer(world, window)
    assert answer.ok, f"the {window} of {model} did not succeed: {answer.status} {answer.error}"
    reported = answer.body.get("duration_s") if isinstance(answer.body, dict) else None
    to_version = answer.body.get("to_version") if isinstance(answer.body, dict) else None
    audited = [e for e in audit_entries(world, model, window) if e["details"].get("to_version") == to_version]
    assert audited, f"the gateway's audit trail has no {window} of {model} to version {to_version!r}"
    print(f"{window} of {model}: {answer.latency_s:.3f} s seen by the client, {reported} s by the gateway "
          f"(audited at {audited[-1]['at']})")  # fmt: skip
    assert answer.latency_s < seconds, (
        f"the {window} of {model} took {answer.latency_s:.1f} s (bound {seconds} s)"
    )
