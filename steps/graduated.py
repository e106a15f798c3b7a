"""Steps for a graduated rollback: on a breach the gateway's canary controller first reduces the
canary's share, raises an alert if the breach stays, and rolls back only when it has persisted a stated time;
a breach that ends lets the rollout go on. Each stage is judged from the gateway's routing state and audit
trail, with the times between them measured, and from the clients' answers (which version answered)."""

from __future__ import annotations

import time
from typing import Any

from harness.steps_registry import given, then
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._routing import answers, audit_entries, canary_done, gateway_time, policy_when, state


@given(
    "canary breaches are graduated: the canary's share drops to {share:g} % and it is rolled back only if "
    "the breach persists {seconds:g} seconds",
    example="Given canary breaches are graduated: the canary's share drops to 5 % and it is rolled back only "
    "if the breach persists 6 seconds",
    needs=("workers", "admin"),
)
def graduated(world: World, share: float, seconds: float) -> None:
    """The next canary rollout is given a graduated rollback (with the limits of ``Given canary limits``)."""
    world.gateway.live()  # the rule is for this cluster's controller: it must be there
    state(world).graduated = {"reduced_share": share, "persist_seconds": seconds}


def _judgments(policy: dict[str, Any]) -> str:
    return ", ".join(f"{h.get('verdict')} at {h.get('share'):g} %" for h in policy.get("history", []))


@then(
    "within {seconds:d} seconds the canary of {model:w} is reduced to {share:g} %",
    example="Then within 30 seconds the canary of demo is reduced to 5 %",
    needs=("workers", "admin"),
)
def reduced(world: World, seconds: int, model: str, share: float) -> None:
    """The controller judged a breach and lowered the canary's share (status ``reduced``, stored). The
    clients' share of canary answers while reduced is judged by ``at each stage the canary's share ...``."""
    began = time.time()

    def is_reduced(policy: dict[str, Any]) -> bool:
        return policy.get("status") == "reduced" and bool(policy.get("stored"))

    policy = policy_when(world, model, is_reduced, seconds, interval=0.1)
    assert policy.get("status") == "reduced", (
        f"expected the canary of {model} reduced within {seconds} s; it is {policy.get('status')!r} "
        f"(reason {policy.get('reason')!r}; judgments: {_judgments(policy)})"
    )
    assert policy.get("share") == share, (
        f"expected the canary's share {share:g} %, it is {policy.get('share')}"
    )
    print(f"canary reduced to {share:g} % ({time.time() - began:.2f} s of waiting): {policy.get('reason')}")


@then(
    "within {seconds:d} seconds the canary of {model:w} recovers at the {share:g} % stage",
    example="Then within 30 seconds the canary of demo recovers at the 25 % stage",
    needs=("workers", "admin"),
)
def recovered(world: World, seconds: int, model: str, share: float) -> None:
    """A window at the reduced share no longer breached: the canary runs again at the stage it was reduced
    from (the gateway's stored state and a ``recover`` judgment say so)."""

    def is_back(policy: dict[str, Any]) -> bool:
        history = policy.get("history") or []
        return any(h.get("verdict") == "recover" for h in history) and bool(policy.get("stored"))

    policy = policy_when(world, model, is_back, seconds, interval=0.1)
    verdicts = [h.get("verdict") for h in policy.get("history", [])]
    assert "recover" in verdicts, (
        f"expected the canary of {model} to recover within {seconds} s; it is {policy.get('status')!r} "
        f"(judgments: {_judgments(policy)})"
    )
    recover = next(h for h in policy["history"] if h.get("verdict") == "recover")
    stage = policy["stages"][recover["stage"]]
    assert stage == share, f"expected the canary back at the {share:g} % stage, it went back to {stage:g} %"
    reduce = [h for h in policy["history"] if h.get("verdict") == "reduce"][-1]
    spent = gateway_time(recover["at"]) - gateway_time(reduce["at"])
    print(f"canary of {model} recovered at {stage:g} % after {spent:.2f} s at the reduced share")


@then(
    "within {seconds:d} seconds the canary of {model:w} is rolled back after its share was reduced to "
    "{share:g} % for at least {persist:g} seconds",
    example="Then within 60 seconds the canary of demo is rolled back after its share was reduced to 5 % for "
    "at least 6 seconds",
    needs=("workers", "admin"),
)
def rolled_back_graduated(world: World, seconds: int, model: str, share: float, persist: float) -> None:
    """The controller reduced the canary, judged it still breaching at the reduced share (an ``alert``),
    and rolled it back only once ``persist`` seconds had passed since the reduction, judged at the reduced
    share. Prints the time from the canary's first failed or slow answer to each stage."""
    policy = canary_done(world, model, "rolled_back", seconds)
    history = policy["history"]
    verdicts = [h["verdict"] for h in history]
    assert "reduce" in verdicts, f"expected a reduction before the rollback, judgments: {_judgments(policy)}"
    first = verdicts.index("reduce")
    tail = history[first + 1 :]
    assert tail and tail[-1]["verdict"] == "breach", (
        f"expected a breach at the reduced share to end the canary: {_judgments(policy)}"
    )
    assert "recover" not in verdicts[first:], f"the canary recovered in between: {_judgments(policy)}"
    assert all(h["share"] == share for h in tail), f"expected judgments at {share:g} %: {_judgments(policy)}"
    reduce_at, end_at = gateway_time(history[first]["at"]), gateway_time(tail[-1]["at"])
    assert end_at - reduce_at >= persist - 0.05, (
        f"rolled back {end_at - reduce_at:.2f} s after the reduction, before the breach persisted "
        f"{persist:g} s (judgments: {_judgments(policy)})"
    )
    alerts = [h for h in tail if h["verdict"] == "alert"]
    assert alerts, f"expected an alert at the reduced share before the rollback: {_judgments(policy)}"
    alert_at = gateway_time(alerts[0]["at"])
    canary = state(world).values["canary"]
    bad = [a for a in answers(world) if a.version == canary and not a.ok]
    since = f"{reduce_at - bad[0].ended:.2f} s after the canary's first failed answer; " if bad else ""
    print(f"graduated rollback: reduced {since}alert {alert_at - reduce_at:.2f} s and rollback "
          f"{end_at - reduce_at:.2f} s after the reduction")  # fmt: skip


@then(
    'the audit trail of {model:w} has {actions:Actions} entries by "{actor}" in that order',
    example='Then the audit trail of demo has "canary_reduced", "canary_alert" and "canary_rollback" entries '
    'by "canary-controller" in that order',
    needs=("workers", "admin"),
)
def audited_in_order(world: World, model: str, actions: tuple[str, ...], actor: str) -> None:
    """For each action, the entries by ``actor``; the first of each follows the first of the one before."""
    times = []
    for action in actions:
        mine = [
            e for e in audit_entries(world, model, action) if (e.get("details") or {}).get("actor") == actor
        ]
        assert mine, f"expected a {action!r} audit entry for {model} by {actor!r}"
        times.append(min(gateway_time(e["at"]) for e in mine))
        print(f"audit: {action} by {actor}: {mine[0]['details'].get('reason')}")
    out_of_order = [
        f"{actions[i + 1]} before {actions[i]}" for i in range(len(actions) - 1) if times[i + 1] < times[i]
    ]
    assert not out_of_order, f"audit entries out of order: {'; '.join(out_of_order)}"
