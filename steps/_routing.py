"""What the routing steps share within one scenario: the traffic with varied inputs, the output oracle,
canary limits, and the instants and measurements later steps judge (one state per World)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.drivers.routed_traffic import Routed, RoutedTraffic
from harness.oracle import Oracle, mismatches
from harness.waiting import poll
from harness.world import World

#: A canary's statuses while it gets traffic (``reduced``: a graduated rollback lowered its share).
CANARY_LIVE = ("running", "reduced")

#: Answers the background traffic must have produced before a Given declares it flowing.
WARM_UP_ANSWERS = 20


@dataclass
class RoutingState:
    oracle: Oracle = field(default_factory=Oracle)
    traffic: RoutedTraffic | None = None
    canary_limits: dict[str, float] = field(default_factory=dict)
    graduated: dict[str, float] = field(default_factory=dict)  # a graduated rollback for the next canary
    marks: dict[str, float] = field(default_factory=dict)  # named wall-clock instants of this module
    values: dict[str, Any] = field(default_factory=dict)  # measurements taken by When steps


_STATES_KEY = pytest.StashKey[RoutingState]()


def state(world: World) -> RoutingState:
    current = world.stash.get(_STATES_KEY, None)
    if current is None:
        current = world.stash[_STATES_KEY] = RoutingState()
    return current


def traffic(world: World, model: str, clients: int = 8) -> RoutedTraffic:
    """The scenario's traffic with varied inputs to ``model`` (created on first use, closed at teardown)."""
    current = state(world)
    if current.traffic is None:
        current.traffic = RoutedTraffic(
            world.target.inference_url, world.observations, model=model, clients=clients
        )
        world.defer("stop the routed traffic", current.traffic.close)
    assert current.traffic.model == model, (
        f"this scenario's traffic goes to {current.traffic.model}, not {model}"
    )
    return current.traffic


def answers(world: World, start: float | None = None, end: float | None = None) -> list[Routed]:
    """The traffic's answers of requests started in ``[start, end]``; stops a running traffic when the
    window is open-ended (a Then judges a finished history)."""
    current = state(world)
    assert current.traffic is not None, (
        "no traffic was sent in this scenario (missing a 'clients send' step?)"
    )
    return current.traffic.answers(start, end)


def artifacts_of(world: World, model: str) -> dict[str, Path]:
    """version -> artifact file of every version of ``model`` built in this scenario."""
    return {v: a.path for (m, v), a in world.artifacts.items() if m == model}


def check_outputs(world: World, model: str, picked: list[Routed]) -> None:
    """Every successful answer's outputs are what its version's model file computes for its input."""
    problems = mismatches(state(world).oracle, artifacts_of(world, model), picked)
    checked = sum(1 for a in picked if a.ok)
    assert checked, "no successful answer to check"
    assert not problems, (
        f"{len(problems)} of {checked} answers carried outputs their version does not compute: "
        + "; ".join(problems[:3])
    )
    print(f"outputs checked against the model files: {checked} answers")


def policy_when(
    world: World, model: str, done: Callable[[dict[str, Any]], bool], timeout: float, interval: float
) -> dict[str, Any]:
    """The routing policy of ``model`` (``{}`` without one) once ``done`` holds on it, else the last one
    seen when ``timeout`` has passed (for the step's assertion to describe)."""
    return poll(
        lambda: world.gateway.routing(model).get("policy") or {}, done, timeout=timeout, interval=interval
    )


def canary_done(world: World, model: str, status: str, timeout: float) -> dict[str, Any]:
    """Wait until the canary of ``model`` has ended (neither running nor reduced, and stored); print its
    judgments; it must have ended as ``status``. Kept for the steps that judge its history."""

    def ended(policy: dict[str, Any]) -> bool:  # {}: no policy (yet), not an ended canary
        return bool(policy) and policy.get("status") not in CANARY_LIVE and bool(policy.get("stored", True))

    policy = policy_when(world, model, ended, timeout, interval=0.25)
    history = [(h.get("share"), h.get("verdict"), h.get("requests"), h.get("error_rate"), h.get("p99_ms"))
               for h in policy.get("history", [])]  # fmt: skip
    print(
        f"canary of {model}: {policy.get('status')}; stages (share, verdict, requests, error rate, p99 "
        f"ms): {history}"
    )
    assert policy.get("status") == status, (
        f"expected the canary of {model} to be {status} within {timeout:g} s; it is {policy.get('status')!r} "
        f"(reason {policy.get('reason')!r}, judgments {history})"
    )
    state(world).values["canary_policy"] = policy
    return policy


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """The central interval holding ``confidence`` of Binomial(n, p)."""
    from scipy.stats import binom  # imported when used: scipy.stats costs half a second at start-up

    tail = (1 - confidence) / 2
    return int(binom.ppf(tail, n, p)), int(binom.ppf(1 - tail, n, p))


def gateway_time(text: str) -> float:
    """A gateway timestamp (``2025-01-08T10:00:00.000Z``) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def audit_entries(world: World, model: str, action: str) -> list[dict[str, Any]]:
    return [e for e in world.gateway.audit() if e.get("model") == model and e.get("action") == action]
