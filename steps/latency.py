"""Latency regressions judged against a baseline measured in the same run, on the same machine.

A fixed threshold ("average below 100 ms") lets a service get 80 ms slower unnoticed on a fast machine,
and fails a healthy one on a slow machine. Here each inference request is paired with a health check
sent to the same front door just before it, one pair at a time: the health check's round trip is the
baseline (the network, the HTTP stack, the machine's load at that very moment), and what inference adds
on top of it is what the serving path costs. Medians, so that a busy machine's outliers do not decide.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pytest

from harness.drivers.v2 import Answer
from harness.evidence import judged
from harness.steps_registry import then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import wrong_outputs

#: The first pairs warm the connections and caches up; they are sent but not judged.
WARM_UP_PAIRS = 5


@dataclass
class Pairs:
    model: str
    answers: list[Answer]  # the health checks and inference answers, in the order sent
    baseline_s: list[float]
    inference_s: list[float]

    @property
    def baseline_median_ms(self) -> float:
        return statistics.median(self.baseline_s) * 1000

    @property
    def inference_median_ms(self) -> float:
        return statistics.median(self.inference_s) * 1000

    def describe(self) -> str:
        return (
            f"median inference {self.inference_median_ms:.1f} ms, median health check "
            f"{self.baseline_median_ms:.1f} ms, over {len(self.inference_s)} pairs"
        )


PAIRS = pytest.StashKey[Pairs]()


@when(
    "{count:Requests} for {model:w} alternate with as many health checks",
    example="When 100 inference requests for demo alternate with as many health checks",
)
def alternate(world: World, count: int, model: str) -> None:
    """Send, one at a time, a liveness check (``GET /v2/health/live``) and then an inference request,
    ``count`` times (after a few warm-up pairs). Every inference must succeed with the outputs its
    version computes."""
    baseline, inference, answers = [], [], []
    for i in range(WARM_UP_PAIRS + count):
        live = world.v2.live()
        assert live.ok, f"the health check failed: {live.status} {live.error}"
        answer = world.v2.infer(model, seed=i)
        _judge(world, model, answer)
        if i >= WARM_UP_PAIRS:
            answers += [live, answer]
            baseline.append(live.latency_s)
            inference.append(answer.latency_s)
    world.stash[PAIRS] = pairs = Pairs(model, answers, baseline, inference)
    print(pairs.describe())


def _judge(world: World, model: str, answer: Answer) -> None:
    assert answer.ok, f"an inference request for {model} failed: {answer.status} {answer.error}"
    problem = wrong_outputs(world, model, answer)
    assert problem is None, problem


def _pairs(world: World) -> Pairs:
    pairs = world.stash.get(PAIRS, None)
    assert pairs is not None, "no paired requests were sent (missing 'When N requests ... alternate ...')"
    judged(pairs.answers, "paired health checks and inference answers")
    return pairs


@then(
    "the median inference latency is less than {ms:d} ms above the median health check",
    example="Then the median inference latency is less than 30 ms above the median health check",
)
def inference_above_baseline(world: World, ms: int) -> None:
    """What inference adds to the front door's own round trip, median against median, stays under
    ``ms``: a serving path that got slower fails here however fast or slow the machine is."""
    pairs = _pairs(world)
    added = pairs.inference_median_ms - pairs.baseline_median_ms
    assert added < ms, (
        f"expected inference to add less than {ms} ms to the health check's round trip; it adds "
        f"{added:.1f} ms ({pairs.describe()})"
    )


@then(
    "the median inference latency is below {ms:d} ms",
    example="Then the median inference latency is below 60 ms",
)
def inference_median_below(world: World, ms: int) -> None:
    """The median of the paired inference requests' latencies (client side) is below ``ms``: catches a
    slowdown that the health checks share (one added to every request)."""
    pairs = _pairs(world)
    assert pairs.inference_median_ms < ms, (
        f"expected a median inference latency below {ms} ms, measured {pairs.describe()}"
    )
