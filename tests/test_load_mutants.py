"""Prove that ``regression.feature`` can fail, and that it does not cry wolf.

The mutant ``tests/mutants/added_latency`` makes the gateway wait 40 ms before every inference: every
answer is still right, only slower. A baseline of the real cluster is recorded in a file
(``--baseline FILE --save-baseline``, two runs so that it knows the machine's own spread); the mutant run
against it must be a significant regression with its numbers, and five later runs of the real cluster
must not be. Real processes on the local backend (``pytest --gherkin`` in subprocesses, ~3 min).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MUTANT = ROOT / "tests" / "mutants" / "added_latency"
FEATURE = "features/regression.feature"
STEP = "Then latency has not regressed against the baseline"

pytestmark = pytest.mark.slow


def _run(baseline: Path, *, times: int, mutant: bool = False, save: bool = False) -> str:
    """The regression scenario ``times`` times in one pytest run; its output. Fails unless every run
    passed, except for a mutant (whose output is returned for the caller to judge)."""
    env = dict(os.environ)
    env.pop("SERVINGBDD_SUT_PYTHONPATH", None)
    if mutant:
        env["SERVINGBDD_SUT_PYTHONPATH"] = str(MUTANT)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
        "--gherkin", "--backend", "local", "--keep-duplicates", *[FEATURE] * times,
        "--baseline", str(baseline), *(["--save-baseline"] if save else []),
    ]  # fmt: skip
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180 * times)
    output = result.stdout + result.stderr
    if not mutant:
        assert result.returncode == 0, _failures(output)
        assert f"{times} passed" in output, _failures(output)
    return output


def _failures(output: str) -> str:
    """The FAILURES section (what failed and why), else the tail."""
    start = output.find("= FAILURES =")
    return output[start : start + 6000] if start >= 0 else output[-5000:]


def test_a_gateway_that_adds_40_ms_is_a_regression_and_the_real_cluster_is_not(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    recorded = _run(baseline, times=2, save=True)
    assert "[regression/The server is no regression against its own baseline], 2 run(s)" in recorded, recorded

    slow = _run(baseline, times=1, mutant=True)
    assert f"✗ {STEP}" in slow, slow[-5000:]
    found = re.search(
        rf"latency regressed against the baseline in {re.escape(str(baseline))}: (REGRESSION; .*)", slow
    )
    assert found is not None, slow[-5000:]
    numbers = re.search(r"\(\+(\d+\.\d)% over the slowest run.*one-sided p = ([\d.e+-]+) ", found.group(1))
    assert numbers is not None, found.group(1)
    increase, p_value = float(numbers.group(1)), float(numbers.group(2))
    assert increase >= 50 and p_value < 0.01, found.group(1)
    persists = r"the run's 3 stretches: (\+\d+% p=\S+ REGRESSION, ){2}\+\d+% p=\S+ REGRESSION;"
    assert re.search(persists, found.group(1)), "the added latency shows in every stretch of the run"
    print("mutant:", found.group(1))
    # the same mutant against a baseline of itself (taken in the scenario) is no regression: the file's
    # baseline of the real cluster is what tells them apart
    assert re.search(r"against the baseline taken in this scenario: no regression", slow), slow[-5000:]

    again = _run(baseline, times=5)  # no false alarm: five runs of the unchanged cluster
    verdicts = re.findall(
        rf"against the baseline in {re.escape(str(baseline))}: (no regression|REGRESSION)", again
    )
    assert verdicts == ["no regression"] * 5, again[-5000:]
    file = re.escape(str(baseline))
    in_file = rf"against the baseline in {file}: .*?(median [\d.]+ ms \(slowest.*?slowest run)"
    medians = re.findall(in_file, again)
    print("real cluster, 5 runs:", *medians, sep="\n")
