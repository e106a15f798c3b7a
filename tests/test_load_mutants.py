"""Prove that ``regression.feature`` can fail, and that it does not cry wolf.

The mutant ``tests/mutants/added_latency`` makes the gateway wait 40 ms before every inference: every
answer is still right, only slower. A baseline of the real cluster is recorded in a file
(``--baseline FILE --save-baseline``, two runs so that it knows the machine's own spread); the mutant run
against it must be a significant regression in every stretch of the run, with its numbers, and five later
runs of the real cluster must not be. A run while the shared test machine is far busier than when the
baseline was recorded is refused as not comparable (the step says so) and is not counted either way.
Real processes on the local backend (``pytest --gherkin`` in subprocesses, ~4 min).
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


def _run(baseline: Path, *, times: int, mutant: bool = False, save: bool = False) -> tuple[int, str]:
    """The regression scenario ``times`` times in one pytest run: its exit code and output."""
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
    return result.returncode, result.stdout + result.stderr


def _failures(output: str) -> str:
    """The FAILURES section (what failed and why), else the tail."""
    start = output.find("= FAILURES =")
    return output[start : start + 6000] if start >= 0 else output[-5000:]


def _verdicts(output: str, baseline: Path) -> list[str]:
    """Each run's verdict against the file: "REGRESSION", "no regression" or "not comparable"."""
    found = rf"^against the baseline in {re.escape(str(baseline))}: (no regression|REGRESSION|not comparable)"
    return re.findall(found, output, flags=re.MULTILINE)


def test_a_gateway_that_adds_40_ms_is_a_regression_and_the_real_cluster_is_not(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    code, recorded = _run(baseline, times=2, save=True)
    assert code == 0, _failures(recorded)
    assert "[regression/The server is no regression against its own baseline], 2 run(s)" in recorded, recorded

    for _attempt in range(3):  # a run on a machine far busier than at recording is refused, not judged
        code, slow = _run(baseline, times=1, mutant=True)
        if _verdicts(slow, baseline) != ["not comparable"]:
            break
    assert code == 1 and f"✗ {STEP}" in slow, _failures(slow)
    assert _verdicts(slow, baseline) == ["REGRESSION"], _failures(slow)
    line = re.search(rf"latency regressed against the baseline in {re.escape(str(baseline))}: (.*)", slow)
    assert line is not None, _failures(slow)
    persists = r"the run's 3 stretches: (\+\d+% p=\S+ REGRESSION, ){2}\+\d+% p=\S+ REGRESSION;"
    assert re.search(persists, line.group(1)), "the added latency shows in every stretch of the run"
    numbers = re.search(r"\(\+(\d+\.\d)% over the slowest run.*one-sided p = ([\d.e+-]+) ", line.group(1))
    assert numbers is not None, line.group(1)
    assert float(numbers.group(1)) >= 50 and float(numbers.group(2)) < 0.01, line.group(1)
    # the same mutant against a baseline of itself taken in the scenario is no regression: the recorded
    # baseline of the real cluster is what tells them apart
    assert re.search(r"against the baseline taken in this scenario: no regression", slow), _failures(slow)
    print("mutant:", line.group(1))

    code, again = _run(baseline, times=5)  # no false alarm: five runs of the unchanged cluster
    verdicts = _verdicts(again, baseline)
    assert len(verdicts) == 5 and "REGRESSION" not in verdicts, _failures(again)
    assert verdicts.count("no regression") >= 3, f"too few runs could be judged: {verdicts}"
    assert code == (0 if "not comparable" not in verdicts else 1), _failures(again)
    print("real cluster, 5 runs against the recorded baseline:", verdicts)
    in_file = (
        rf"against the baseline in {re.escape(str(baseline))}: .*?(median [\d.]+ ms \(slowest.*?slowest run)"
    )
    print(*re.findall(in_file, again), sep="\n")
