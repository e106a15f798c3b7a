"""Traffic with varied inputs and the judgment of what was computed: every answer's outputs are checked
against the model file of the version that answered (``harness.oracle``), not only its label."""

from __future__ import annotations

import re
from typing import Any

import parse

from harness.drivers.routed_traffic import describe
from harness.steps_registry import given, parse_type, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._routing import WARM_UP_ANSWERS, answers, check_outputs, state, traffic


@parse_type("Misbehaviour")
@parse.with_pattern(r"fails \d+ % of requests|is \d+ ms slower")
def parse_misbehaviour(text: str) -> dict[str, float]:
    """``fails 20 % of requests`` -> {"fail_fraction": 0.2}; ``is 300 ms slower`` -> {"delay_ms": 300}."""
    number = float(re.findall(r"\d+", text)[0])
    return {"fail_fraction": number / 100} if text.startswith("fails") else {"delay_ms": number}


@given(
    'a {model:w} version "{version}" that {misbehaviour:Misbehaviour} is registered in the catalog',
    example='Given a demo version "3" that fails 20 % of requests is registered in the catalog',
    needs=("workers", "admin"),
)
def register_misbehaving(world: World, model: str, version: str, misbehaviour: dict[str, float]) -> None:
    """Build a real artifact computing the demo version's own function that misbehaves as said: NaN for that
    share of inputs (the worker refuses them with a 500), or an answer held that much longer; register it."""
    artifact = world.build_artifact(
        model,
        version,
        lambda root: _build_misbehaving(root, model, version, base_version=version, **misbehaviour),
    )
    answer = world.gateway.register_version(model, artifact.artifact_uri, version=version)
    assert answer.ok, (
        f"expected the gateway to register {model} version {version!r}, it answered {answer.status}: "
        f"{answer.error}"
    )


@given(
    "{clients:d} clients keep sending inference requests with varied inputs to {model:w}",
    example="Given 8 clients keep sending inference requests with varied inputs to demo",
    needs=("workers", "admin"),
)
def keep_sending(world: World, clients: int, model: str) -> None:
    """Background traffic until the scenario ends: each client sends one request after the other, each with
    its own input; every answer is kept with its input, version, outputs and timing."""
    flow = traffic(world, model, clients)
    before = len(flow.answers())
    flow.start()
    got = flow.wait_for(before + WARM_UP_ANSWERS, timeout=30.0)
    assert got >= before + WARM_UP_ANSWERS, (
        f"expected the traffic to flow, only {got - before} answers in 30 s"
    )


@when(
    "{clients:d} clients send {count:d} inference requests with varied inputs to {model:w}",
    example="When 8 clients send 1200 inference requests with varied inputs to demo",
    needs=("workers", "admin"),
)
def send_counted(world: World, clients: int, count: int, model: str) -> None:
    """``count`` requests spread over ``clients`` concurrent clients, each with its own input."""
    flow = traffic(world, model, clients)
    flow.stop()
    sent = flow.run(count)
    assert len(sent) == count, f"expected {count} answers, got {len(sent)}"


@when(
    "{clients:d} clients send {count:d} inference requests with varied inputs to {model:w} versions "
    "{versions:Versions} by name",
    example="When 8 clients send 600 inference requests with varied inputs to demo versions "
    '"1", "2" and "3" by name',
    needs=("workers", "admin"),
)
def send_by_name(world: World, clients: int, count: int, model: str, versions: tuple[str, ...]) -> None:
    """Concurrent requests that each name a version in their path (round robin over ``versions``)."""
    flow = traffic(world, model, clients)
    flow.stop()
    sent = flow.run(count, versions=list(versions))
    assert len(sent) == count, f"expected {count} answers, got {len(sent)}"


@then(
    "every answer's outputs are what the version that answered computes for its input",
    example="Then every answer's outputs are what the version that answered computes for its input",
    needs=("workers", "admin"),
)
def outputs_match(world: World) -> None:
    """Each successful answer of the scenario's traffic is compared with the output of the model file of the
    version it names, run here on the same input (onnxruntime); the body and the header name one version."""
    flow = traffic(world, _model(world))
    flow.stop()
    picked = answers(world)
    split = [a for a in picked if a.body_version and a.header_version and a.body_version != a.header_version]
    assert not split, f"answers naming two versions (body vs header): {describe(split)}"
    check_outputs(world, flow.model, picked)


@then(
    "every answer came from the version its request named, with that version's own outputs",
    example="Then every answer came from the version its request named, with that version's own outputs",
    needs=("workers", "admin"),
)
def named_versions_answered(world: World) -> None:
    """Requests that named a version: each answer is 200, from that version, and computed by it."""
    flow = traffic(world, _model(world))
    flow.stop()
    named = [a for a in answers(world) if a.named is not None]
    assert named, "no request named a version in this scenario"
    wrong = [a for a in named if not a.ok or a.version != a.named]
    assert not wrong, (
        f"expected every request to be answered by the version it named; {len(wrong)} of {len(named)} "
        "were not: "
        + "; ".join(f"{a.request_id} named {a.named!r}, got {a.status} from {a.version!r}" for a in wrong[:5])
    )
    check_outputs(world, flow.model, named)


@then(
    '{count:d} requests with varied inputs to {model:w} are all answered by version "{version}" with its own '
    "outputs",
    example='Then 50 requests with varied inputs to demo are all answered by version "2" '
    "with its own outputs",
    needs=("workers", "admin"),
)
def probe_answered_by(world: World, count: int, model: str, version: str) -> None:
    """A fresh batch of ``count`` requests (8 at a time): each 200, from ``version``, with its outputs."""
    flow = traffic(world, model)
    flow.stop()
    sent = flow.run(count)
    wrong = [a for a in sent if not a.ok or a.version != version]
    assert not wrong, (
        f"expected {count} answers from version {version!r}; {len(wrong)} were not: {describe(wrong)}"
    )
    check_outputs(world, model, sent)


def _model(world: World) -> str:
    current = state(world).traffic
    assert current is not None, "no traffic was sent in this scenario"
    return current.model


def _build_misbehaving(*args: Any, **kwargs: Any) -> Any:
    from fixtures.misbehaving import build_misbehaving  # imports the worker's app: only when needed

    return build_misbehaving(*args, **kwargs)
