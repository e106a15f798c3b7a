"""Time buckets of a run: per-bucket percentiles (refused when too few), throughput, statuses, windows."""

from __future__ import annotations

import math

import pytest

from harness.observations import Observation
from harness.report.timeseries import Window, bucket_width, buckets, windows_from_marks


def test_buckets_count_rates_statuses_and_percentiles() -> None:
    t0 = 1000.0
    obs = [Observation(t0 + i / 100, 0.010, 200) for i in range(100)]  # second 0: 100 ok at 10 ms
    obs += [Observation(t0 + 1 + i / 10, 0.020, 200) for i in range(10)]  # second 1: 10 ok
    obs += [Observation(t0 + 1.5, 0.5, 503), Observation(t0 + 3.2, 1.0, 0)]  # second 2 is empty
    b = buckets(obs, t0)
    assert [x.requests for x in b] == [100, 11, 0, 1]
    assert b[0].p99_s == pytest.approx(0.010) and b[0].rps == 100
    assert b[1].p50_s == pytest.approx(0.020) and b[1].p95_s is None and b[1].p99_s is None, (
        "10 samples: no p95"
    )
    assert b[1].by_status == {200: 10, 503: 1} and b[1].ok_rps == 10
    assert b[3].by_status == {0: 1} and b[3].p50_s is None


def test_long_runs_get_wider_buckets() -> None:
    assert bucket_width(60) == 1 and bucket_width(600) == 4
    assert buckets([], 0.0) == []


def test_windows_pair_started_and_ended_marks() -> None:
    marks = {"load_started": 1.0, "swap_started": 5.0, "swap_ended": 7.0, "rollback_started": 9.0}
    assert windows_from_marks(marks) == [Window("swap", 5.0, 7.0), Window("rollback", 9.0, math.inf)]
