"""SLO statistics: exact nearest-rank values, refusal below the minimum count, windows, error counts."""

from __future__ import annotations

import random

import pytest

from harness.observations import Observation
from harness.slo import (
    InsufficientSamples,
    LatencySummary,
    answers_by_version,
    client_timeouts,
    errors_by_status,
    min_samples_for,
    percentile,
    status_counts,
)


def test_nearest_rank_on_known_data() -> None:
    values = list(range(1, 101))  # 1..100
    random.Random(7).shuffle(values)  # order must not matter
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 0.999, min_samples=1) == 100
    assert percentile([3.0, 1.0], 0.5) == 1.0  # an observed value, not the interpolated 2.0
    assert percentile([10, 20, 30, 40], 0.5) == 20
    assert percentile([10, 20, 30, 40], 0.51) == 30
    # float error must not shift the rank: 0.29 * 100 is 28.999999999999996 in binary
    assert percentile(list(range(1, 101)), 0.29) == 29


def test_percentile_is_not_the_max_when_the_minimum_is_met() -> None:
    values = [0.01] * 99 + [5.0]
    assert percentile(values, 0.99) == 0.01  # the one slow request lies above p99
    assert percentile([*values, 5.0], 0.99) == 5.0


def test_default_minimum_leaves_one_sample_above() -> None:
    assert min_samples_for(0.50) == 2
    assert min_samples_for(0.95) == 20
    assert min_samples_for(0.99) == 100
    assert min_samples_for(0.999) == 1000
    assert min_samples_for(0.9) == 10


def test_refuses_below_the_minimum_naming_q_count_and_minimum() -> None:
    with pytest.raises(InsufficientSamples) as refused:
        percentile([0.1] * 99, 0.99)
    message = str(refused.value)
    assert "p99" in message and "99 sample" in message and "100" in message
    assert (refused.value.count, refused.value.minimum) == (99, 100)
    with pytest.raises(InsufficientSamples, match="p95 from 19"):
        percentile([0.1] * 19, 0.95)
    assert percentile([0.1] * 20, 0.95) == 0.1
    with pytest.raises(InsufficientSamples, match="at least 500"):
        percentile([0.1] * 200, 0.99, min_samples=500)
    with pytest.raises(InsufficientSamples):
        percentile([], 0.5)


def test_q_must_be_a_fraction() -> None:
    for q in (0, 1, 99, -0.5):
        with pytest.raises(ValueError, match="fraction"):
            percentile([1.0] * 1000, q)


def _obs(started: float, latency: float, status: int = 200, version: str | None = "1") -> Observation:
    return Observation(
        started=started, latency_s=latency, status=status, model_version=version, source="load"
    )


def test_latency_summary_exact_values() -> None:
    observations = [_obs(i, (i + 1) / 1000) for i in range(100)]  # 1..100 ms
    summary = LatencySummary.of(observations)
    assert summary.count == 100
    assert summary.avg == pytest.approx(0.0505)
    assert (summary.p50, summary.p95, summary.p99, summary.max) == (0.050, 0.095, 0.099, 0.100)
    assert summary.missing == {}
    assert summary.require("p99") == 0.099
    assert "p99 99.0 ms" in str(summary)


def test_latency_summary_reports_why_a_percentile_is_missing() -> None:
    summary = LatencySummary.of([_obs(i, 0.01 * (i + 1)) for i in range(30)])
    assert summary.p50 == pytest.approx(0.15) and summary.p95 == pytest.approx(0.29)
    assert summary.p99 is None
    assert "p99 from 30 sample(s)" in summary.missing["p99"] and "100" in summary.missing["p99"]
    with pytest.raises(InsufficientSamples, match="p99 from 30"):
        summary.require("p99")
    empty = LatencySummary.of([])
    assert (empty.count, empty.avg, empty.max, empty.p50) == (0, None, None, None)
    with pytest.raises(InsufficientSamples, match="avg from 0"):
        empty.require("avg")
    with pytest.raises(ValueError, match="no statistic"):
        summary.require("p75")


def test_latency_summary_ok_only_leaves_out_failures() -> None:
    observations = [_obs(0, 0.1)] * 5 + [_obs(0, 0.0001, status=0, version=None)] * 5
    assert LatencySummary.of(observations).count == 10
    only_ok = LatencySummary.of(observations, ok_only=True)
    assert only_ok.count == 5 and only_ok.max == 0.1


def test_errors_by_status() -> None:
    observations = [_obs(0, 0.1, s) for s in (200, 200, 201, 503, 503, 0, 404, 500)]
    assert errors_by_status(observations) == {0: 1, 404: 1, 500: 1, 503: 2}
    assert status_counts(observations) == {0: 1, 200: 2, 201: 1, 404: 1, 500: 1, 503: 2}
    assert errors_by_status([_obs(0, 0.1)]) == {}


def test_answers_by_version_counts_only_successful_answers() -> None:
    observations = [_obs(0, 0.1, 200, "1")] * 3 + [_obs(0, 0.1, 200, "2")] + [_obs(0, 0.1, 503, None)] * 2
    assert answers_by_version(observations) == {"1": 3, "2": 1}


def test_client_timeouts_are_status_0_with_a_timeout_error() -> None:
    timed_out = Observation(0, 0.1, 0, error="RetriesExceeded: URL ...: 0, original=timed out", source="load")
    refused = Observation(0, 0.001, 0, error="ConnectionRefusedError: [Errno 111] Connection refused")
    gateway_deadline = Observation(0, 5.0, 504, error='{"error": "upstream timeout"}')
    assert client_timeouts([timed_out, refused, gateway_deadline, timed_out]) == 2
