"""Judging samples against an environment's SLO table: bounds, error rate, and refusal below the minimum."""

from __future__ import annotations

import pytest

from harness.observations import Observation
from harness.slo_check import SloTable, judge


def _samples(latencies_ms: list[float], status: int = 200) -> list[Observation]:
    return [
        Observation(started=float(i), latency_s=ms / 1000, status=status) for i, ms in enumerate(latencies_ms)
    ]


def test_a_run_within_every_bound_passes() -> None:
    table = SloTable("staging", p50_ms=60, p95_ms=100, p99_ms=150, error_rate=0.01)
    verdict = judge(_samples([50.0] * 190 + [90.0] * 9 + [140.0]), table)
    assert verdict.passed, str(verdict)
    assert [c.name for c in verdict.checks] == ["p50", "p95", "p99", "error_rate"]
    assert verdict.checks[2].measured == pytest.approx(90.0), "nearest rank: the 198th of 200"
    verdict.assert_met()


def test_a_too_strict_bound_fails_naming_percentile_bound_and_sample_size() -> None:
    table = SloTable("production", p99_ms=100)
    verdict = judge(_samples([50.0] * 195 + [120.0] * 5), table)
    assert not verdict.passed
    with pytest.raises(AssertionError) as failed:
        verdict.assert_met()
    assert "p99 120.0 ms over 200 samples exceeds the bound 100 ms" in str(failed.value)
    assert "SLO 'production' not met over 200 requests" in str(failed.value)


def test_below_the_minimum_a_percentile_is_refused_and_the_slo_not_met() -> None:
    table = SloTable("staging", p50_ms=1000, p99_ms=1000, min_samples={"p99": 500, "p50": 1})
    verdict = judge(_samples([1.0] * 499), table)
    assert verdict.checks[0].passed, "p50 is judged (the default rule needs only 2 samples)"
    refused = verdict.checks[1]
    assert not refused.passed and refused.measured is None and refused.needed == 500
    assert "p99 not judged: 499 successful samples, at least 500 needed (bound 1000 ms)" in refused.message
    assert table.minimum("p50") == 2, "a table never lowers the default minimum"


def test_error_rate_counts_every_non_2xx_and_latency_only_the_2xx() -> None:
    samples = _samples([10.0] * 98) + _samples([5000.0], status=503) + _samples([9000.0], status=0)
    verdict = judge(samples, SloTable("staging", p50_ms=20, error_rate=0.01))
    p50, errors = verdict.checks
    assert p50.passed and p50.samples == 98, "failed answers' latencies are not in the percentiles"
    assert not errors.passed and errors.measured == pytest.approx(0.02)
    assert "error rate 2.00% (2 of 100 not 2xx) exceeds the bound 1.00%" in errors.message


def test_no_samples_is_never_a_pass() -> None:
    verdict = judge([], SloTable("staging", p50_ms=10, error_rate=0.5))
    assert not verdict.passed and len(verdict.failures) == 2


def test_profile_overrides_merge_over_the_table() -> None:
    table = SloTable("production", p50_ms=50, p99_ms=500, min_samples={"p99": 1000})
    merged = table.merged({"p99_ms": 1000, "min_samples": {"p50": 80}})
    assert (merged.p50_ms, merged.p99_ms, dict(merged.min_samples)) == (50, 1000, {"p99": 1000, "p50": 80})
