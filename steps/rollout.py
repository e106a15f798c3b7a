"""What an acknowledged rollout promises: the moment the gateway says a swap is done, every worker serves
the new version.

A gateway that answers "swapped" while some workers are still loading (or have not started) lets a
release engineer retire the old artifact, or send full traffic, too early. The step asks every worker
directly (its own port, not through the gateway, which would hide a worker that cannot serve by routing
around it) to compute with the new version, at once and all together, as soon as the answer arrives.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from harness.drivers.v2 import Answer, V2Client
from harness.evidence import judged
from harness.steps_registry import then, when
from harness.world import World
from steps._support import keep_answer, wrong_outputs


@dataclass
class AtAck:
    model: str
    version: str
    acknowledged: Answer
    answers: dict[str, Answer]  # worker name -> its answer for the new version, asked at the acknowledgement
    asked_within_s: float  # from the acknowledgement until the last worker was asked


AT_ACK = pytest.StashKey[AtAck]()


@when(
    'I swap {model:w} to version "{version}" and ask every worker for it as soon as the swap is acknowledged',
    example='When I swap demo to version "2" and ask every worker for it as soon as the swap is acknowledged',
    needs=("admin", "workers"),
)
def swap_and_ask_workers(world: World, model: str, version: str) -> None:
    """Swap through the gateway's admin API (kept as the ``swap``, for the steps that judge it); the
    moment it answers 2xx, send every running worker, directly and in parallel, an inference request for
    ``version``."""
    workers = sorted(world.running_workers(), key=lambda w: w.name)
    assert workers, "expected running workers to ask, the backend runs none"
    clients = {
        w.name: V2Client(w.url, models=world.model, observations=world.observations, timeout=10.0)
        for w in workers
    }
    for client in clients.values():
        world.defer("close a worker client", client.close)
    pool = ThreadPoolExecutor(len(clients), thread_name_prefix="at-ack")
    world.defer("stop the worker askers", pool.shutdown)
    answer = world.gateway.swap(model, version)
    acknowledged = time.monotonic()
    keep_answer(world, "swap", answer)
    if not answer.ok:
        return  # the Then steps say so

    def ask(name: str) -> tuple[str, Answer]:
        return name, clients[name].infer(model, version=version, seed=31)

    futures = [pool.submit(ask, name) for name in clients]
    asked = {}
    for future in futures:
        name, reply = future.result()
        asked[name] = reply
    world.stash[AT_ACK] = AtAck(model, version, answer, asked, time.monotonic() - acknowledged)


@then(
    'every worker computed with version "{version}" as soon as the swap was acknowledged',
    example='Then every worker computed with version "2" as soon as the swap was acknowledged',
    needs=("workers",),
)
def every_worker_served_at_ack(world: World, version: str) -> None:
    """Each worker's answer, asked at the acknowledgement, was a 2xx from ``version`` with the outputs
    that version's model computes."""
    at_ack = world.stash.get(AT_ACK, None)
    assert at_ack is not None, "no acknowledged swap was followed by asking the workers (see the When step)"
    judged(list(at_ack.answers.values()), "workers' answers at the acknowledgement")
    problems = []
    for name, answer in sorted(at_ack.answers.items()):
        if not answer.ok:
            problems.append(f"{name} answered {answer.status or 'nothing'}: {answer.error}")
        elif answer.model_version != version:
            problems.append(f"{name} answered with version {answer.model_version!r}")
        elif problem := wrong_outputs(world, at_ack.model, answer, version):
            problems.append(f"{name}: {problem}")
    assert not problems, (
        f"the gateway acknowledged the swap of {at_ack.model} to version {version!r}, but asked within "
        f"{at_ack.asked_within_s * 1000:.0f} ms of that, not every worker could compute with it: "
        + "; ".join(problems)
    )
