"""Baselines: a regression needs both a stated effect size and significance; the file round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.baseline import MAX_SAMPLES, BaselineFile, Entry, compare
from harness.observations import Observation


def _lognormal(seed: int, n: int, median_ms: float) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(rng.lognormal(np.log(median_ms / 1000), 0.4, n))


def test_the_same_service_against_itself_raises_no_alarm() -> None:
    alarms = [
        compare("s", _lognormal(seed, 800, 5), _lognormal(seed + 100, 800, 5)).regressed for seed in range(20)
    ]
    assert not any(alarms)


def test_a_real_slowdown_is_a_regression_with_its_numbers() -> None:
    result = compare("hot_swap/p99", _lognormal(1, 500, 5), _lognormal(2, 500, 8))
    assert result.regressed and result.large_enough and result.significant
    assert 0.4 < result.increase < 0.8 and result.p_value < 1e-10 and result.superiority > 0.7
    text = str(result)
    assert "REGRESSION" in text and "Mann-Whitney U" in text and "one-sided p" in text and "n = 500" in text


def test_significant_but_small_is_not_a_regression() -> None:
    result = compare("s", _lognormal(1, 20_000, 5), _lognormal(2, 20_000, 5.25))  # +5 %
    assert result.significant and not result.large_enough and not result.regressed


def test_large_but_not_significant_is_not_a_regression() -> None:
    wide = [
        list(np.random.default_rng(seed).lognormal(np.log(median), 0.8, 20))
        for seed, median in ((0, 5), (50, 7))
    ]
    result = compare(
        "s", *wide, min_increase=0.2
    )  # a noisy service, 20 samples a side: the median moved, the evidence is weak
    assert result.large_enough and result.increase > 0.3
    assert not result.significant and not result.regressed, str(result)


def test_a_faster_run_is_never_a_regression() -> None:
    assert not compare("s", _lognormal(1, 500, 8), _lognormal(2, 500, 5)).regressed


def test_too_few_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 20 needed on each side"):
        compare("s", _lognormal(1, 19, 5), _lognormal(2, 500, 5))


def test_the_file_round_trips_successful_latencies_only(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    samples = [Observation(started=i, latency_s=0.001 * (i % 7 + 1), status=200) for i in range(50)]
    samples.append(Observation(started=99, latency_s=9.0, status=503))
    book = BaselineFile.load(path)
    book.record("hot_swap/swap under load", Entry.of(samples, {"feature": "hot_swap", "profile": "steady"}))
    book.save()
    raw = json.loads(path.read_text())
    assert raw["version"] == 1 and raw["scenarios"]["hot_swap/swap under load"]["summary"]["count"] == 50
    again = BaselineFile.load(path).get("hot_swap/swap under load")
    assert len(again.latencies_s) == 50 and max(again.latencies_s) == pytest.approx(0.007)
    assert again.labels["profile"] == "steady"
    with pytest.raises(KeyError, match="no baseline for 'other'"):
        BaselineFile.load(path).get("other")


def test_large_runs_are_subsampled_to_the_cap() -> None:
    many = [Observation(started=i, latency_s=0.001 + i * 1e-9, status=200) for i in range(MAX_SAMPLES + 5000)]
    entry = Entry.of(many)
    assert len(entry.latencies_s) == MAX_SAMPLES
    assert entry.latencies_s == Entry.of(many).latencies_s, "the subsample is seeded: the same every time"


def test_a_baseline_of_several_runs_raises_the_bar_to_its_own_spread(tmp_path: Path) -> None:
    book = BaselineFile(tmp_path / "b.json")
    for seed, median in ((1, 5.0), (2, 6.5), (3, 5.5)):  # three runs of the same service on a noisy day
        run = [Observation(started=0, latency_s=v, status=200) for v in _lognormal(seed, 300, median)]
        book.record("s", Entry.of(run))
    book.save()
    entry = BaselineFile.load(tmp_path / "b.json").get("s")
    assert len(entry.run_medians_s) == 3 and len(entry.latencies_s) == 900
    assert 0.2 < entry.spread < 0.45
    noisy = compare("s", entry, _lognormal(4, 300, 7.0))  # as slow as the slowest day, a little more
    assert noisy.significant and not noisy.large_enough and not noisy.regressed, str(noisy)
    assert "slowest of 3 baseline run(s)" in str(noisy) and noisy.reference_median_s == max(
        entry.run_medians_s
    )
    slow = compare("s", entry, _lognormal(5, 300, 12.0))
    assert slow.regressed, str(slow)
    book.record("s", Entry.of([Observation(0, 0.001, 200)] * 30), replace=True)
    assert len(book.get("s").run_medians_s) == 1
