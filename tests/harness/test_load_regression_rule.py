"""The regression step's rule on synthetic samples: a regression persists through the run (each third
regresses too), and a recorded baseline is not compared with a run on a far busier machine."""

from __future__ import annotations

import random

import pytest

from harness.baseline import Entry
from harness.observations import Observation
from steps import load_profiles
from steps.load_profiles import LOADS_LABEL, _judged, _not_comparable


def _answers(latencies_ms: list[float], t0: float = 1000.0, rate: float = 40.0) -> list[Observation]:
    """Answers at ``rate`` per second from ``t0``, with the given latencies."""
    return [
        Observation(started=t0 + i / rate, latency_s=ms / 1000, status=200, source="load")
        for i, ms in enumerate(latencies_ms)
    ]


def _latencies(n: int, median_ms: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median_ms * rng.lognormvariate(0, 0.3) for _ in range(n)]


BASELINE = Entry(tuple(v / 1000 for v in _latencies(320, 12, seed=1)), run_medians_s=(0.0118, 0.0122))


def test_a_slowdown_through_the_whole_run_is_a_regression_in_every_third() -> None:
    slower = [v + 40 for v in _latencies(160, 12, seed=2)]
    judged = _judged("k", BASELINE, _answers(slower))
    assert judged.regressed and judged.whole.regressed
    assert all(p is not None and p.regressed for p in judged.parts) and len(judged.parts) == 3
    assert str(judged).startswith("REGRESSION; the run's 3 stretches: +")


def test_a_burst_that_spares_a_third_of_the_run_is_no_regression() -> None:
    run = _latencies(160, 12, seed=3)
    burst = [v * 4 if i < 110 else v for i, v in enumerate(run)]  # two thirds of the run, 4 times slower
    judged = _judged("k", BASELINE, _answers(burst))
    assert judged.whole.regressed, "the whole run's median moved"
    assert not judged.regressed, "the last third did not: a burst of the machine, not a slower build"
    assert str(judged).startswith("no regression; the run's 3 stretches:")


def test_the_unchanged_service_is_no_regression() -> None:
    assert not _judged("k", BASELINE, _answers(_latencies(160, 12, seed=4))).regressed


def test_too_few_answers_to_compare_fail_the_step() -> None:
    with pytest.raises(AssertionError, match="at least 20 needed"):
        _judged("k", BASELINE, _answers(_latencies(10, 12, seed=5)))


@pytest.mark.parametrize(
    ("recorded", "now", "comparable"),
    [
        ("3.0 4.0", 7.9, True),  # up to twice the busiest recorded run
        ("1.0", 2.9, True),  # or the busiest plus the cores (2), whichever is more
        ("3.0 4.0", 8.5, False),
        ("", 50.0, True),  # recorded without the load: compared as it is
    ],
)
def test_a_run_on_a_far_busier_machine_is_not_compared(
    monkeypatch: pytest.MonkeyPatch, recorded: str, now: float, comparable: bool
) -> None:
    monkeypatch.setattr(load_profiles.os, "getloadavg", lambda: (now, now, now))
    monkeypatch.setattr(load_profiles.os, "cpu_count", lambda: 2)
    reason = _not_comparable(Entry((0.01,) * 30, labels={LOADS_LABEL: recorded} if recorded else {}))
    assert (reason is None) == comparable, reason
    if reason is not None:
        assert f"load average is {now:.1f} on 2 cores now, at most 4.0" in reason
