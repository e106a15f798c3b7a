"""Readiness truth: "ready" must mean that a request sent at once is served, at every instant.

A prober thread asks the front door's server readiness and the model's readiness over and over while a
scenario acts (a worker boots, a version loads); each time either says ready, it sends an inference
request at once and keeps the answer. The Then steps judge the whole history: every "ready" was followed
by a successful answer computed by the version it names, and the not-ready period was really observed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from harness.drivers.v2 import Answer, V2Client
from harness.evidence import judged
from harness.steps_registry import given, then, when
from harness.targets.reference import ClusterSpec
from harness.world import World
from steps._support import poll, wrong_outputs

#: The prober's pause between two rounds (a round is two readiness requests, maybe an inference).
PROBE_GAP_S = 0.01
#: The prober stops by itself after this long (a scenario that forgets to judge it must not run for ever).
PROBE_LIMIT_S = 300.0


@dataclass
class Probe:
    at: float  # seconds since the prober started
    server: Answer  # the server readiness answer
    model: Answer  # the model readiness answer
    answer: Answer | None = None  # the inference sent at once when either said ready

    @property
    def server_ready(self) -> bool:
        return self.server.ok

    @property
    def model_ready(self) -> bool:
        return self.model.ok

    @property
    def ready(self) -> bool:
        return self.server_ready or self.model_ready


@dataclass
class Prober:
    model: str
    client: V2Client
    probes: list[Probe] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    started: float = 0.0
    error: str | None = None

    def run(self) -> None:
        self.started = time.monotonic()
        try:
            while not self.stop.is_set() and time.monotonic() - self.started < PROBE_LIMIT_S:
                server = self.client.ready()
                model = self.client.model_ready(self.model)
                probe = Probe(time.monotonic() - self.started, server, model)
                if probe.ready:
                    probe.answer = self.client.infer(self.model, seed=len(self.probes))
                self.probes.append(probe)
                self.stop.wait(PROBE_GAP_S)
        except Exception as exc:  # the judge reports it: a prober that died judged nothing
            self.error = f"{type(exc).__name__}: {exc}"

    def finish(self) -> list[Probe]:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30.0)
        assert self.error is None, f"the readiness prober failed: {self.error}"
        return self.probes


PROBER = pytest.StashKey[Prober]()


@given(
    "readiness of the server and {model:w} is probed continuously",
    example="Given readiness of the server and demo is probed continuously",
)
def probe_readiness(world: World, model: str) -> None:
    """Start a prober (a thread with its own client): every 10 ms it asks server readiness and the
    model's readiness, and whenever either answers 200 it sends an inference request at once."""
    target = world.target
    client = V2Client(
        target.inference_url,
        models=world.model,
        observations=world.observations,
        headers=target.headers(),
        verify=getattr(target, "verify", True),
        timeout=getattr(target, "timeout", 10.0),
    )
    prober = Prober(model, client)
    prober.thread = threading.Thread(target=prober.run, name="readiness-prober", daemon=True)
    world.stash[PROBER] = prober
    world.defer("close the prober's client", client.close)
    world.defer("stop the readiness prober", prober.finish)
    prober.thread.start()
    poll(lambda: len(prober.probes), lambda n: n > 0 or prober.error is not None, timeout=10.0)
    assert prober.probes, f"the readiness prober got no answer in 10 s: {prober.error}"


def _probes(world: World) -> tuple[Prober, list[Probe]]:
    prober = world.stash.get(PROBER, None)
    assert prober is not None, (
        "readiness was not probed (missing 'Given readiness ... is probed continuously')"
    )
    return prober, prober.finish()


@then(
    "whenever the server or {model:w} reported ready, a request sent at once succeeded",
    example="Then whenever the server or demo reported ready, a request sent at once succeeded",
)
def ready_meant_serving(world: World, model: str) -> None:
    """Stop the prober, then judge every probe that said ready: the inference sent right after it got a
    2xx with the outputs its version computes. At least one probe must have said ready."""
    _, probes = _probes(world)
    judged([p.server for p in probes], "readiness probes")
    claims = [p for p in probes if p.ready]
    assert claims, f"in {len(probes)} probes neither the server nor {model} ever reported ready"
    lies = []
    for probe in claims:
        answer = probe.answer
        assert answer is not None
        problem = None
        if not answer.ok:
            problem = f"answered {answer.status or 'nothing'}: {answer.error}"
        else:
            problem = wrong_outputs(world, model, answer)
        if problem:
            said = " and ".join(
                w for w, r in (("the server", probe.server_ready), (model, probe.model_ready)) if r
            )
            lies.append(f"at +{probe.at:.2f} s {said} reported ready, yet the request sent at once {problem}")
    assert not lies, (
        f"{len(lies)} of {len(claims)} readiness claims were not true (of {len(probes)} probes): "
        + "; ".join(lies[:3])
    )
    print(f"{len(claims)} readiness claims in {len(probes)} probes, each followed by a served request")


@then(
    "the probes saw the server and {model:w} not ready at first, then ready",
    example="Then the probes saw the server and demo not ready at first, then ready",
)
def not_ready_then_ready(world: World, model: str) -> None:
    """The first probe found both not ready (the scenario really watched the time before serving), and a
    later one found both ready."""
    _, probes = _probes(world)
    assert probes, "the prober made no probe"
    judged([p.server for p in probes], "readiness probes")
    first = probes[0]
    assert not first.ready, (
        f"the first probe already found the server ready={first.server_ready}, {model} "
        f"ready={first.model_ready}: nothing could serve yet"
    )
    both = [p for p in probes if p.server_ready and p.model_ready]
    assert both, f"in {len(probes)} probes the server and {model} never both reported ready"
    print(f"not ready until +{both[0].at:.2f} s, then ready")


# -- a cluster that comes up -------------------------------------------------------------------------
@given(
    'a gateway without workers, with {model:w} version "{version}" in production',
    example='Given a gateway without workers, with demo version "1" in production',
    needs=("workers",),
)
def gateway_without_workers(world: World, model: str, version: str) -> None:
    """Start the reference gateway alone, with the version registered (production); nothing serves yet."""
    artifact = world.artifacts.get((model, version))
    assert artifact is not None, f"no artifact for {model} version {version!r}: build it in an earlier step"
    world.start_cluster(
        ClusterSpec(
            workers=0,
            artifact_root=world.reference.artifact_root,
            preload=[(model, version, artifact.artifact_uri)],
        )
    )


@when(
    "a worker is started without waiting for it",
    example="When a worker is started without waiting for it",
    needs=("workers",),
)
def worker_without_waiting(world: World) -> None:
    """Launch one more worker and return at once: it registers, loads the production versions and starts
    heartbeating while the scenario goes on."""
    world.add_workers(1, wait=False)


@then(
    "within {seconds:g} seconds the server and {model:w} report ready",
    example="Then within 60 seconds the server and demo report ready",
)
def ready_within(world: World, seconds: float, model: str) -> None:
    """Server readiness and the model's readiness both become 200 (polled), and then a request succeeds
    at once with the outputs its version computes."""
    both = poll(
        lambda: (world.v2.ready(), world.v2.model_ready(model)),
        lambda r: r[0].ok and r[1].ok,
        timeout=seconds,
        interval=0.2,
    )
    assert both[0].ok and both[1].ok, (
        f"after {seconds:g} s: server ready {both[0].status}, {model} ready {both[1].status}: "
        f"{both[0].error or both[1].error}"
    )
    answer = world.v2.infer(model, seed=99)
    assert answer.ok, f"{model} reported ready, yet a request failed at once: {answer.status} {answer.error}"
    problem = wrong_outputs(world, model, answer)
    assert problem is None, problem
