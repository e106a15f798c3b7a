"""Open Inference Protocol (KServe V2) steps that any V2 server must pass: what answers carry, how bad
requests are refused, what metadata and readiness say, how the repository loads and unloads.

Every check judges what the server computed and did: outputs against what the named version's model
computes (when the target knows it), readiness against whether inference really succeeds, an unload
against a request that was really in flight. A failure says what the server did, so that a user can
report it upstream.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.drivers.background import BackgroundCall
from harness.drivers.v2 import Answer
from harness.evidence import judged
from harness.steps_registry import given, then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import keep_answer, poll, wrong_outputs
from steps.swap import admin_action

#: The requests a step sent, for the Then steps that judge them.
SENT = pytest.StashKey[tuple[str, list[Answer]]]()
REFUSED = pytest.StashKey[Answer]()
IN_FLIGHT = pytest.StashKey["InFlight"]()

#: The largest calibration batch (a request of about 12 MB of JSON for 4 features per row).
MAX_ROWS = 400_000

#: Malformed requests, each a body (or raw bytes) made from a valid one.
MALFORMED = (
    "a body that is not JSON",
    "no inputs",
    "a shape that does not match its data",
    "text where numbers belong",
    "an unknown datatype",
)


def _sent(world: World) -> tuple[str, list[Answer]]:
    sent = world.stash.get(SENT, None)
    assert sent is not None, "no requests were sent in this scenario (missing a 'When N requests ...' step)"
    return sent


def _describe_answer(answer: Answer) -> str:
    return f"{answer.status or 'no answer'}: {answer.error or answer.body!r}"[:400]


# -- valid requests and what they carry -------------------------------------------------------------
@when(
    "{count:Requests} for {model:w} are sent one after the other",
    example="When 20 inference requests for demo are sent one after the other",
)
def send_sequential(world: World, count: int, model: str) -> None:
    """Send ``count`` valid inference requests (each with its own inputs and id) and keep the answers."""
    answers = [world.v2.infer(model, seed=i, request_id=f"seq-{i:04d}") for i in range(count)]
    world.stash[SENT] = (model, answers)
    failed = [a for a in answers if not a.ok]
    assert not failed, f"{len(failed)} of {count} valid requests failed, e.g. {_describe_answer(failed[0])}"


@then(
    "every answer has the outputs the model's metadata declares, with their datatypes and shapes",
    example="Then every answer has the outputs the model's metadata declares, "
    "with their datatypes and shapes",
)
def outputs_as_declared(world: World) -> None:
    """Each answer's outputs have the names and datatypes the model metadata (``GET /v2/models/{m}``)
    declares, and shapes that fit the declared ones for the request's batch size."""
    model, answers = _sent(world)
    metadata = world.v2.model_metadata(model)
    assert metadata.ok and isinstance(metadata.body, dict), (
        f"expected the metadata of {model}, the server answered {_describe_answer(metadata)}"
    )
    declared = {o.get("name"): o for o in metadata.body.get("outputs") or []}
    assert declared, f"the metadata of {model} declares no outputs: {metadata.body}"
    for answer in answers:
        got = {o.get("name"): o for o in answer.outputs}
        assert set(got) == set(declared), (
            f"request {answer.request and answer.request.get('id')}: outputs {sorted(map(str, got))}, "
            f"the metadata declares {sorted(map(str, declared))}"
        )
        for name, out in got.items():
            spec = declared[name]
            assert out.get("datatype") == spec.get("datatype"), (
                f"output {name!r} has datatype {out.get('datatype')}, "
                f"the metadata declares {spec.get('datatype')}"
            )
            shape, want = list(out.get("shape") or []), list(spec.get("shape") or [])
            fits = len(shape) == len(want) and all(w < 0 or w == s for s, w in zip(shape, want, strict=True))
            assert fits, f"output {name!r} has shape {shape}, the metadata declares {want} (-1 = any)"
            size = 1
            for dim in shape:
                size *= dim
            assert len(_flat(out.get("data"))) == size, (
                f"output {name!r} has shape {shape} but carries {len(_flat(out.get('data')))} values"
            )


def _flat(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [x for item in data for x in _flat(item)]
    return [data]


@then("every answer carries its request's id", example="Then every answer carries its request's id")
def ids_echoed(world: World) -> None:
    """The ``id`` of each answer is the id its request carried."""
    _, answers = _sent(world)
    judged(answers, "answers to sequential requests")
    wrong = [
        (a.request.get("id") if a.request else None, a.body.get("id") if isinstance(a.body, dict) else None)
        for a in answers
        if not isinstance(a.body, dict) or a.request is None or a.body.get("id") != a.request.get("id")
    ]
    assert not wrong, f"{len(wrong)} answers do not echo their request's id (sent, answered): {wrong[:3]}"


@then(
    "every answer was computed by the version it names",
    example="Then every answer was computed by the version it names",
)
def computed_by_named_version(world: World) -> None:
    """Each answer names a version, and its outputs are what that version's model computes for the
    request's inputs (the target knows the models: the reference cluster runs the artifact itself)."""
    model, answers = _sent(world)
    judged(answers, "answers to sequential requests")
    unnamed = [a for a in answers if a.model_version is None]
    assert not unnamed, f"{len(unnamed)} answers name no model_version, e.g. {_describe_answer(unnamed[0])}"
    spec = world.model(model)
    assert spec.expected is not None, f"the target cannot tell what {model} must answer (no expected outputs)"
    problems = [p for p in (wrong_outputs(world, model, a) for a in answers) if p]
    assert not problems, f"{len(problems)} of {len(answers)} answers were miscomputed: {problems[0]}"


# -- malformed requests ------------------------------------------------------------------------------
def _malformed(world: World, model: str, problem: str) -> bytes | dict[str, Any]:
    body = world.model(model).request(1, seed=1, request_id="malformed")
    tensor = body["inputs"][0]
    if problem == "a body that is not JSON":
        return b'{"inputs": [ this is not json'
    if problem == "no inputs":
        return {"id": "malformed", "inputs": []}
    if problem == "a shape that does not match its data":
        tensor["shape"] = [d + 1 for d in tensor["shape"]]
        return body
    if problem == "text where numbers belong":
        tensor["data"] = ["not a number"] * len(tensor["data"])
        return body
    if problem == "an unknown datatype":
        tensor["datatype"] = "FLOAT99"
        return body
    raise AssertionError(f"unknown malformation {problem!r}; the steps know: {', '.join(MALFORMED)}")


@when(
    "a request for {model:w} is sent with {problem}",
    example="When a request for demo is sent with a shape that does not match its data",
)
def send_malformed(world: World, model: str, problem: str) -> None:
    """Send one malformed inference request: ``problem`` is one of "a body that is not JSON", "no inputs",
    "a shape that does not match its data", "text where numbers belong", "an unknown datatype"."""
    body = _malformed(world, model, problem)
    world.stash[REFUSED] = world.v2.infer_raw(f"/v2/models/{model}/infer", body)


@then(
    "it is refused with a 4xx whose error mentions {words:Alternatives}",
    example='Then it is refused with a 4xx whose error mentions "shape" or "size"',
)
def refused_4xx(world: World, words: tuple[str, ...]) -> None:
    """The malformed request got a 4xx (never a 5xx, never a 2xx) whose error text names the problem:
    it contains one of ``words`` (case-insensitive)."""
    answer = world.stash.get(REFUSED, None)
    assert answer is not None, "no malformed request was sent in this scenario"
    judged([answer], "answer to a malformed request")
    assert 400 <= answer.status < 500, (
        f"expected a 4xx for the malformed request, the server answered {_describe_answer(answer)}"
    )
    text = f"{answer.error or ''} {answer.body!r}".lower()
    assert any(w.lower() in text for w in words), (
        f"expected the error to mention {' or '.join(map(repr, words))}; it said {_describe_answer(answer)}"
    )


@then(
    "the server still answers valid requests for {model:w}",
    example="Then the server still answers valid requests for demo",
)
def still_serving(world: World, model: str) -> None:
    """Five valid requests right after all succeed, computed by the version they name."""
    answers = [world.v2.infer(model, seed=100 + i) for i in range(5)]
    failed = [a for a in answers if not a.ok]
    assert not failed, f"the server no longer serves {model}: {_describe_answer(failed[0])}"
    problems = [p for p in (wrong_outputs(world, model, a) for a in answers) if p]
    assert not problems, problems[0]


# -- metadata --------------------------------------------------------------------------------------------
@then(
    "the metadata of {model:w} declares the inputs the model takes",
    example="Then the metadata of demo declares the inputs the model takes",
)
def metadata_inputs(world: World, model: str) -> None:
    """``GET /v2/models/{m}`` names the model and declares the inputs (name, datatype, shape) that valid
    requests carry."""
    answer = world.v2.model_metadata(model)
    assert answer.ok and isinstance(answer.body, dict), f"no metadata for {model}: {_describe_answer(answer)}"
    assert answer.body.get("name") == model, f"the metadata names {answer.body.get('name')!r}, not {model!r}"
    declared = {i.get("name"): i for i in answer.body.get("inputs") or []}
    for tensor in world.model(model).inputs:
        assert tensor.name in declared, (
            f"the metadata of {model} declares no input {tensor.name!r}: {declared}"
        )
        got = declared[tensor.name]
        assert got.get("datatype") == tensor.datatype, (
            f"input {tensor.name!r}: the metadata says {got.get('datatype')}, "
            f"requests carry {tensor.datatype}"
        )
        shape = list(got.get("shape") or [])
        assert len(shape) == len(tensor.shape), (
            f"input {tensor.name!r}: the metadata declares shape {shape}, requests carry {list(tensor.shape)}"
        )


@then(
    "requests for {model:w} are answered by a version its metadata lists",
    example="Then requests for demo are answered by a version its metadata lists",
)
def answering_version_listed(world: World, model: str) -> None:
    """The version that answers a request without a version is among the ``versions`` the model's
    metadata lists, and answers its own metadata request under that version."""
    answer = world.v2.infer(model, seed=3)
    assert answer.ok and answer.model_version, f"expected a versioned answer: {_describe_answer(answer)}"
    metadata = world.v2.model_metadata(model)
    versions = [str(v) for v in (metadata.body or {}).get("versions") or []] if metadata.ok else []
    assert answer.model_version in versions, (
        f"version {answer.model_version!r} answered, but the metadata of {model} lists {versions}"
    )
    by_version = world.v2.model_metadata(model, answer.model_version)
    assert by_version.ok, (
        f"no metadata for {model} version {answer.model_version}: {_describe_answer(by_version)}"
    )


@then(
    'a request for {model:w} version "{version}" is answered by that version',
    example='Then a request for demo version "1" is answered by that version',
)
def explicit_version(world: World, model: str, version: str) -> None:
    """A request naming the version in its path is answered by that version, with its outputs."""
    answer = world.v2.infer(model, version=version, seed=5)
    assert answer.ok, f"expected {model} version {version} to answer, got {_describe_answer(answer)}"
    assert answer.model_version == version, (
        f"asked for version {version!r}, {answer.model_version!r} answered"
    )
    problem = wrong_outputs(world, model, answer, version)
    assert problem is None, problem


@then(
    'a request for {model:w} version "{version}", which is not served, is not answered by another version',
    example='Then a request for demo version "2", which is not served, is not answered by another version',
)
def unserved_version(world: World, model: str, version: str) -> None:
    """A request naming a version the server does not serve is refused (a 4xx, or 503 "unavailable"); a
    server that serves it after all (loading it on demand) must answer with that version's outputs.
    Never another version's answer: a client that asks for a version relies on getting it."""
    answer = world.v2.infer(model, version=version, seed=6)
    if answer.ok:
        assert answer.model_version == version, (
            f"asked for {model} version {version!r}, which is not served; version "
            f"{answer.model_version!r} answered instead"
        )
        problem = wrong_outputs(world, model, answer, version)
        assert problem is None, f"asked for version {version!r}, got another version's outputs: {problem}"
        return
    assert answer.status in range(400, 500) or answer.status == 503, (
        f"expected a request for {model} version {version!r}, which is not served, to be refused with a 4xx "
        f"or 503; the server answered {_describe_answer(answer)}"
    )


# -- readiness -------------------------------------------------------------------------------------------
@then(
    "the server and {model:w} report ready, and a request sent at once succeeds",
    example="Then the server and demo report ready, and a request sent at once succeeds",
)
def ready_and_serving(world: World, model: str) -> None:
    """Server readiness and model readiness are 200, and an inference request sent right after succeeds
    with the outputs its version computes: ready means able to serve, not just alive."""
    server, ready = world.v2.ready(), world.v2.model_ready(model)
    assert server.ok, f"the server is not ready: {_describe_answer(server)}"
    assert ready.ok, f"{model} is not ready: {_describe_answer(ready)}"
    answer = world.v2.infer(model, seed=11)
    assert answer.ok, f"{model} reported ready, yet a request failed at once: {_describe_answer(answer)}"
    problem = wrong_outputs(world, model, answer)
    assert problem is None, problem


@then("{model:w} reports not ready", example="Then demo reports not ready")
def model_not_ready(world: World, model: str) -> None:
    """``GET /v2/models/{m}/ready`` is not 200 (a model that cannot serve must not claim it can)."""
    ready = world.v2.model_ready(model)
    assert not ready.ok, f"{model} reports ready while it cannot serve: {_describe_answer(ready)}"


@then(
    "the server reports not ready while no model is loaded",
    example="Then the server reports not ready while no model is loaded",
)
def server_not_ready(world: World) -> None:
    """``GET /v2/health/ready`` is not 200 when the server could serve nothing."""
    ready = world.v2.ready()
    assert not ready.ok, f"the server reports ready with no model loaded: {_describe_answer(ready)}"


@then(
    "a request for {model:w} is refused without a server error",
    example="Then a request for demo is refused without a server error",
)
def refused_cleanly(world: World, model: str) -> None:
    """A request for an unloaded model is not answered 2xx (nothing may answer it) and not 500 (the server
    knows why it cannot): a 4xx, or 503 "unavailable"."""
    answer = world.v2.infer(model, seed=13)
    assert not answer.ok, f"{model} was unloaded, yet a request was answered {_describe_answer(answer)}"
    assert answer.status in range(400, 500) or answer.status == 503, (
        f"expected a 4xx or 503 for a request to an unloaded model, got {_describe_answer(answer)}"
    )


# -- the repository ----------------------------------------------------------------------------------
@when("{model:w} is unloaded", example="When demo is unloaded", needs=("repository",))
def unload(world: World, model: str) -> None:
    """``POST /v2/repository/models/{m}/unload``: the server must release the model (and first finish
    the requests it is running)."""
    world.mark("unload_started")
    answer = world.target.unload(model)
    world.mark("unload_ended")
    keep_answer(world, "unload", answer)
    assert answer.ok, f"expected the unload of {model} to succeed, got {_describe_answer(answer)}"


@when(
    '{model:w} version "{version}" is loaded',
    example='When demo version "2" is loaded',
    needs=("repository",),
)
def load_version(world: World, model: str, version: str) -> None:
    """Make ``version`` the loaded version through the repository extension (the reference cluster: a hot
    swap on every worker). Under load, the ``rollout`` window runs from just before the request until
    1 s after the answer; it must succeed."""
    admin_action(world, "rollout", lambda: world.target.load_version(model, version))
    answer = world.answers["rollout"]
    assert answer.ok, f"expected loading {model} version {version} to succeed, got {_describe_answer(answer)}"


@then(
    "within {seconds:g} seconds {model:w} reports ready again",
    example="Then within 30 seconds demo reports ready again",
)
def ready_again(world: World, seconds: float, model: str) -> None:
    """Model readiness comes back (polled), and then a request succeeds at once."""
    ready = poll(lambda: world.v2.model_ready(model), lambda a: a.ok, timeout=seconds, interval=0.2)
    assert ready.ok, f"{model} is still not ready after {seconds:g} s: {_describe_answer(ready)}"
    ready_and_serving(world, model)


# -- a request in flight during an unload -----------------------------------------------------------
@dataclass
class InFlight:
    model: str
    rows: int
    call: BackgroundCall[Answer] = field(repr=False)


@given(
    "a request for {model:w} that takes about {seconds:g} seconds is in flight",
    example="Given a request for demo that takes about 2 seconds is in flight",
)
def request_in_flight(world: World, model: str, seconds: float) -> None:
    """Calibrate a batch size from timed batches, send a batch sized to take about ``seconds`` from another
    thread (its body serialized in advance, so that it reaches the server at once), and return while the
    server works on it."""
    spec = world.model(model)
    path = f"/v2/models/{model}/infer"

    def timed(rows: int) -> Answer:
        body = spec.request(rows, seed=21, request_id=f"timing-{rows}")
        answer = world.v2.infer_raw(path, json.dumps(body).encode(), timeout=seconds * 10 + 30)
        assert answer.ok, f"the timing request of {rows} rows failed: {_describe_answer(answer)}"
        return answer

    rows = 2000
    latency = timed(rows).latency_s
    while latency < seconds / 4 and rows < MAX_ROWS:
        rows = min(rows * 4, MAX_ROWS)
        latency = timed(rows).latency_s
    # never past the largest batch: beyond ~12 MB of JSON a server may refuse the body (413) at once
    rows = min(MAX_ROWS, max(rows, int(rows * seconds / max(latency, 1e-3))))
    body = spec.request(rows, seed=22, request_id="in-flight")
    raw = json.dumps(body).encode()

    def send() -> Answer:
        answer = world.v2.infer_raw(path, raw, timeout=seconds * 10 + 30)
        answer.request = body
        return answer

    sent = BackgroundCall.start(f"POST {path} ({rows} rows)", send)
    world.stash[IN_FLIGHT] = InFlight(model, rows, sent)
    world.defer("wait for the request in flight", lambda: sent.abandon(seconds * 10 + 35))
    time.sleep(min(0.3, seconds / 4))  # sent: the server is reading or computing it
    assert sent.answered_at is None, (
        f"the {rows}-row request ({len(raw)} bytes) was answered already, "
        f"{_describe_answer(sent.answer) if sent.answer else ''}: make it longer"
    )


@then(
    "the request in flight was answered successfully after the unload began, with its outputs",
    example="Then the request in flight was answered successfully after the unload began, with its outputs",
)
def in_flight_survived(world: World) -> None:
    """The request that was running when the unload began got a 2xx with one output row per input row,
    computed by the version it names: the server finished it before releasing the model."""
    flight = world.stash.get(IN_FLIGHT, None)
    assert flight is not None, "no request was put in flight in this scenario"
    sent = flight.call
    sent.wait(120)
    assert sent.error is None, f"the request in flight broke in the test process: {sent.error!r}"
    assert sent.answer is not None, "the request in flight got no answer within 120 s"
    began = world.marks.get("unload_started")
    assert began is not None, "no unload happened in this scenario"
    assert sent.answered_at is not None and sent.answered_at > began, (
        "the request finished before the unload began: it was not in flight (make it longer)"
    )
    answer = sent.answer
    judged([answer], "answer to the request in flight")
    assert answer.ok, f"the request in flight during the unload failed: {_describe_answer(answer)}"
    problem = wrong_outputs(world, flight.model, answer)
    assert problem is None, f"the request in flight was miscomputed: {problem}"
    rows = [o for o in answer.outputs if o.get("shape")]
    assert rows and rows[0]["shape"][0] == flight.rows, (
        f"expected {flight.rows} output rows, the answer has shape {rows[0]['shape'] if rows else None}"
    )
