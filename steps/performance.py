"""Steps for latency SLOs: a fixed number of requests at a steady rate, judged from raw samples."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.drivers.metrics import requests_by_status
from harness.load.paced import PacedRun, send_paced
from harness.slo import InsufficientSamples, LatencySummary, percentile
from harness.steps_registry import then, when
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import describe

#: The sender must leave each request within this of its due time, or the run measured the test process.
MAX_SENDER_LAG_S = 0.5
TIMEOUT_STATUSES = (408, 504)

#: The paced run of the scenario, its model, and the gateway's answer counts by status before it.
_RUNS_KEY = pytest.StashKey[tuple[PacedRun, str, Counter[str]]]()


@when(
    "{count:d} requests for {model:w} are sent evenly over {seconds:d} seconds",
    example="When 300 requests for demo are sent evenly over 15 seconds",
    needs=("metrics",),
)
def paced_requests(world: World, count: int, model: str, seconds: int) -> None:
    """An open-loop sender: request ``i`` leaves at ``i * seconds / count`` whatever the answers take
    (a slow service does not slow the sender down). Fails if the sender itself could not keep the pace."""
    counted_before = _counted(world, model)
    world.mark("paced_started")
    run = send_paced(world.v2, model, count, float(seconds))
    world.mark("paced_ended")
    world.observations.extend(s.observation for s in run.sent)
    world.stash[_RUNS_KEY] = (run, model, counted_before)
    summary = LatencySummary.of(s.observation for s in run.sent)
    print(f"{count} requests over {seconds} s (took {run.elapsed_s:.1f} s, sender lag max "
          f"{run.max_lag_s * 1000:.0f} ms): {summary}")  # fmt: skip
    assert run.max_lag_s < MAX_SENDER_LAG_S, (
        f"the test process could not keep the pace of {count / seconds:g} requests/s: a request left "
        f"{run.max_lag_s * 1000:.0f} ms late (limit {MAX_SENDER_LAG_S * 1000:.0f} ms); the latencies would "
        "not measure the service"
    )


def _counted(world: World, model: str) -> Counter[str]:
    return requests_by_status(world.target.metrics(), model, headers=world.target.headers())


def _run(world: World) -> PacedRun:
    entry = world.stash.get(_RUNS_KEY, None)
    assert entry is not None, "no paced requests were sent in this scenario (missing 'When N requests ...')"
    return entry[0]


def _counted_since(world: World) -> Counter[str]:
    """What the gateway itself counted for the paced requests, by status (its /metrics, now minus before)."""
    _, model, before = world.stash[_RUNS_KEY]
    now = _counted(world, model)
    now.subtract(before)
    return +now  # drop zero counts


@then(
    "all {count:d} requests were answered successfully",
    example="Then all 300 requests were answered successfully",
    needs=("metrics",),
)
def all_answered(world: World, count: int) -> None:
    """Every paced request got a 2xx answer."""
    observations = [s.observation for s in _run(world).sent]
    assert len(observations) == count, f"expected {count} requests, {len(observations)} were sent"
    failed = [o for o in observations if not o.ok]
    assert not failed, f"expected all {count} requests to succeed; {len(failed)} did not: {describe(failed)}"
    counted = _counted_since(world)
    assert counted == Counter({"200": count}), (
        f"expected the gateway to count {count} answers with status 200 for these requests, "
        f"it counted {dict(counted)}"
    )


@then(
    "none of them timed out, no 408 and no 504",
    example="Then none of them timed out, no 408 and no 504",
    needs=("metrics",),
)
def none_timed_out(world: World) -> None:
    """No paced request was answered 408 or 504, and none was abandoned by the client's timeout."""
    sent = _run(world).sent
    timed_out = [s.observation for s in sent if s.timed_out or s.observation.status in TIMEOUT_STATUSES]
    assert not timed_out, f"expected no timeouts; {len(timed_out)} requests timed out: {describe(timed_out)}"
    counted = _counted_since(world)
    gateway_timeouts = {s: n for s, n in counted.items() if int(s) in TIMEOUT_STATUSES}
    assert not gateway_timeouts, (
        f"expected the gateway to count no 408/504 answers, it counted {gateway_timeouts}"
    )


def _latencies(world: World) -> list[float]:
    """Client-side latencies of the successful paced requests, as many as the gateway says it answered 200
    (so the statistics are about requests the service really served)."""
    latencies = [s.observation.latency_s for s in _run(world).sent if s.observation.ok]
    served = _counted_since(world).get("200", 0)
    assert served == len(latencies), (
        f"the client recorded {len(latencies)} successful answers but the gateway counted {served}"
    )
    return latencies


@then(
    "their average latency is below {ms:d} ms",
    example="Then their average latency is below 50 ms",
    needs=("metrics",),
)
def average_below(world: World, ms: int) -> None:
    """Mean latency of the successful paced requests (client side, raw samples)."""
    latencies = _latencies(world)
    assert latencies, "expected successful requests to average, there were none"
    average = sum(latencies) / len(latencies)
    assert average * 1000 < ms, (
        f"expected an average latency below {ms} ms, measured {average * 1000:.1f} ms over "
        f"{len(latencies)} requests ({LatencySummary.of_values(latencies)})"
    )


@then(
    "their p99 latency is below {ms:d} ms",
    example="Then their p99 latency is below 250 ms",
    needs=("metrics",),
)
def p99_below(world: World, ms: int) -> None:
    """Nearest-rank p99 of the successful paced requests; refused below 100 samples (see harness.slo)."""
    latencies = _latencies(world)
    try:
        p99 = percentile(latencies, 0.99)
    except InsufficientSamples as exc:
        raise AssertionError(f"cannot judge p99: {exc}") from None
    assert p99 * 1000 < ms, (
        f"expected p99 below {ms} ms, measured {p99 * 1000:.1f} ms over {len(latencies)} requests "
        f"({LatencySummary.of_values(latencies)})"
    )
