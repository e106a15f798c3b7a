"""How long the stub report takes, and how much memory, on large generated suites and on ours.

Targets: 5,000 definitions / 1,000 feature files / 30,000 steps in at most 1.5 s cold and
300 MB, for ``parse`` patterns (our registry) and for regular expressions (pytest-bdd ``parsers.re``);
our own suite in at most 0.5 s. The report keeps no cache, so "cold" is the first report in a fresh
process (imports excluded, every pattern and file read for the first time) and "warm" a second report in
the same process (what stays warm is only Python's own caches). Each measurement runs in its own process;
peak memory is that process's maximum resident size. The whole command line (interpreter start and
imports included) is timed too. Figures are printed, never asserted.

Run: ``.venv/bin/python benchmarks/stub_report.py [--runs 3] [--definitions 5000] [--features 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERBS = ("start", "stop", "kill", "pause", "swap", "load", "send", "check", "drain", "ramp")
PER_MODULE = 20
STEPS_PER_FEATURE = 30
BODIES = (
    "    world.gateway.call({i})\n",
    "    world.flag_{i} = True\n",
    "    assert world.kill_service({i}) is None\n",
    "    raise NotImplementedError('later')\n",
    "    answer = world.gateway.infer('demo', [[{i}]])\n    assert answer.status == 200\n",
)


def text(m: int, k: int, field: str) -> str:
    return f"{VERBS[k % len(VERBS)]} the thing {m}-{k} with {field} workers and {k % 7} spares"


def write_registry(root: Path, modules: int, features: int) -> None:
    (root / "steps").mkdir()
    (root / "features").mkdir()
    for m in range(modules):
        out = ["from harness.steps_registry import given, then, when\n\n"]
        for k in range(PER_MODULE):
            keyword = ("given", "when", "then")[k % 3]
            body = BODIES[(m + k) % len(BODIES)].format(i=k)
            out.append(
                f'\n@{keyword}("{text(m, k, "{count:d}")}")\ndef step_{m}_{k}(world, count):\n{body}\n'
            )
        (root / "steps" / f"steps_{m:03d}.py").write_text("".join(out))
    _features(root / "features", modules, features)


def write_pytest_bdd_re(root: Path, modules: int, features: int) -> None:
    (root / "tests" / "steps").mkdir(parents=True)
    (root / "features").mkdir()
    imports = []
    for m in range(modules):
        out = ["from pytest_bdd import given, parsers, then, when\n\n"]
        for k in range(PER_MODULE):
            keyword = ("given", "when", "then")[k % 3]
            pattern = text(m, k, "(?P<count>\\d+)")
            body = (
                "    client.call(count)\n",
                "    state['n'] = count\n",
                "    raise NotImplementedError\n",
            )[(m + k) % 3]
            out.append(
                f'\n@{keyword}(parsers.re(r"{pattern}"))\ndef step_{m}_{k}(client, state, count):\n{body}'
            )
        (root / "tests" / "steps" / f"steps_{m:03d}.py").write_text("".join(out))
        imports.append(f"from steps.steps_{m:03d} import *  # noqa: F403\n")
    (root / "tests" / "conftest.py").write_text(
        "import pytest\n" + "".join(imports) + "\n\n@pytest.fixture\ndef state():\n    return {}\n"
    )
    (root / "tests" / "test_features.py").write_text(
        "from pytest_bdd import scenarios\n\nscenarios('../features')\n"
    )
    _features(root / "features", modules, features)


def _features(directory: Path, modules: int, features: int) -> None:
    """Each feature: a Background step and 5 scenarios of 5 steps (30 steps run), the last undefined."""
    for f in range(features):
        m = f % modules
        out = [f"Feature: generated {f}\n\n  Background:\n    Given {text(m, 0, '2')}\n"]
        for scenario in range(5):
            out.append(f"\n  Scenario: scenario {scenario}\n")
            for j in range(4):
                k = 1 + (scenario * 4 + j) % (PER_MODULE - 1)
                word = ("Given", "When", "Then")[k % 3]
                out.append(f"    {word} {text(m, k, str(k + f))}\n")
            out.append(f"    Then nobody defined step {scenario}\n")
        (directory / f"f_{f:04d}.feature").write_text("".join(out))


MEASURE = """
import json, resource, sys, time
from pathlib import Path
from tools.stubreport.render import render_json
from tools.stubreport.report import build_report
times, cpu = [], []
for _ in range(2):
    started, started_cpu = time.perf_counter(), time.process_time()
    report = build_report(Path({root!r}))
    render_json(report.as_dict())
    times.append(time.perf_counter() - started)
    cpu.append(time.process_time() - started_cpu)
totals = report.totals()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"cold": times[0], "warm": times[1], "cold_cpu": cpu[0], "warm_cpu": cpu[1],
                  "peak_mb": peak, "totals": totals}}))
"""


#: as users run it: bytecode cached (this machine sets PYTHONDONTWRITEBYTECODE for its sessions)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(root: Path, runs: int) -> dict:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", MEASURE.format(root=str(root))],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        )
        results.append(json.loads(out.stdout))
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "tools" / "stub_report.py"), str(root), "--format", "json"],
            capture_output=True,
            check=False,
            env=ENV,
        )
        results[-1]["cli"] = time.perf_counter() - started
    return {
        "cold_cpu": statistics.median(r["cold_cpu"] for r in results),
        "warm_cpu": statistics.median(r["warm_cpu"] for r in results),
        "cold": statistics.median(r["cold"] for r in results),
        "warm": statistics.median(r["warm"] for r in results),
        "cli": statistics.median(r["cli"] for r in results),
        "peak_mb": max(r["peak_mb"] for r in results),
        "totals": results[-1]["totals"],
    }


def show(name: str, target: str, result: dict) -> None:
    t = result["totals"]
    print(
        f"{name}: {t['definitions']} definitions, {t['feature_steps']} feature steps in "
        f"{t['feature_files']} files "
        f"({target})\n  cold {result['cold']:.2f} s wall / {result['cold_cpu']:.2f} s CPU, warm "
        f"{result['warm']:.2f} s / {result['warm_cpu']:.2f} s CPU, whole command {result['cli']:.2f} s, "
        f"peak memory {result['peak_mb']:.0f} MB  "
        f"[implemented {t['implemented']}, stubs {t['stubs']}, hollow {t['hollow']}, "
        f"undefined {t['undefined']}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--definitions", type=int, default=5000)
    parser.add_argument("--features", type=int, default=1000)
    args = parser.parse_args()
    modules = max(1, args.definitions // PER_MODULE)
    with tempfile.TemporaryDirectory() as tmp:
        for name, write in (
            ("parse (registry)", write_registry),
            ("regex (pytest-bdd parsers.re)", write_pytest_bdd_re),
        ):
            root = Path(tmp) / name.split()[0]
            root.mkdir()
            write(root, modules, args.features)
            show(name, "target: cold <= 1.5 s, <= 300 MB", measure(root, args.runs))
    show("our own suite", "target: <= 0.5 s", measure(REPO, args.runs))
    print("(median of the runs; on a shared machine the CPU time is the figure to compare)")


if __name__ == "__main__":
    main()
