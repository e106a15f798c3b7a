"""How long the stub report takes on a large generated suite (target: under 1 s).

Generates 1,000 step definitions (50 modules: implemented, hollow, stub bodies, typed fields, stacked
decorators, a helper and a loop) and 200 feature files (Background, Scenario Outline with Examples, data
tables) in a temp dir, then times ``build_report`` + JSON rendering; prints the median of a few runs,
cold (empty cache: every feature file parsed, every pattern compiled) and warm (the cache the previous
run left, as on a developer's machine or a CI cache).
Run: ``.venv/bin/python benchmarks/stub_report.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.stubreport.render import render_json
from tools.stubreport.report import build_report

MODULES, PER_MODULE, FEATURES = 50, 20, 200
VERBS = ("start", "stop", "kill", "pause", "swap", "load", "send", "check", "drain", "ramp")
BODIES = (
    "    world.gateway.call({i})\n",
    "    world.flag_{i} = True\n",
    "    assert world.kill_service({i}) is None\n",
    "    raise NotImplementedError('later')\n",
    "    answer = world.gateway.infer('demo', [[{i}]])\n    assert answer.status == 200\n",
)


def step_text(m: int, k: int) -> str:
    return f"{VERBS[k % len(VERBS)]} the thing {m}-{k} with {{count:d}} workers"


def write_suite(root: Path) -> None:
    (root / "steps").mkdir()
    (root / "features").mkdir()
    for m in range(MODULES):
        lines = ["from harness.steps_registry import given, then, when\n\n"]
        for k in range(PER_MODULE - 2):
            keyword = ("given", "when", "then")[k % 3]
            body = BODIES[(m + k) % len(BODIES)].format(i=k)
            decorators = f'@{keyword}("{step_text(m, k)}")\n'
            if k % 7 == 0:
                decorators += f'@{keyword}("also {step_text(m, k)}")\n'
            lines.append(f"\n{decorators}def step_{m}_{k}(world, count):\n{body}\n")
        lines.append(
            "\ndef _alias(pattern, func):\n    when(pattern)(func)\n\n\n"
            f"def _helper_{m}(world):\n    world.backend.restart()\n\n\n"
            f'_alias("helper {m} restarts", _helper_{m})\n\n'
            f'for _v in ("a", "b"):\n\n    @then(f"loop {m} {{_v}} holds")\n'
            f"    def _loop_{m}(world):\n        assert world.gateway.live()\n"
        )
        (root / "steps" / f"steps_{m:02d}.py").write_text("".join(lines))
    for f in range(FEATURES):
        m = f % MODULES
        out = [
            f"Feature: generated {f}\n\n  Background:\n"
            f"    Given {step_text(m, 0).replace('{count:d}', '2')}\n"
        ]
        for s in range(3):
            out.append(f"\n  Scenario Outline: outline {s}\n")
            for k in range(1 + s, PER_MODULE - 2, 4):
                word = ("Given", "When", "Then")[k % 3]
                out.append(f"    {word} {step_text(m, k).replace('{count:d}', '<n>')}\n")
            out.append("      | a | b |\n      | 1 | 2 |\n")
            out.append(
                f"    Then loop {m} a holds\n    When helper {m} restarts\n    When nobody defined this {f}\n"
            )
            out.append("\n    Examples:\n      | n |\n      | 1 |\n      | 2 |\n")
        (root / "features" / f"f_{f:03d}.feature").write_text("".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_suite(root)
        results = {}
        for mode in ("cold", "warm"):
            times, cpu = [], []
            for run in range(args.runs):
                cache = root / "cache" / (f"{mode}-{run}" if mode == "cold" else "warm")
                if mode == "warm" and run == 0:
                    build_report(root / "features", [root / "steps"], None, base=root, cache_dir=cache)
                started, started_cpu = time.perf_counter(), time.process_time()
                report = build_report(root / "features", [root / "steps"], None, base=root, cache_dir=cache)
                render_json(report.as_dict())
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            results[mode] = (times, cpu)
        totals = report.totals()
    print(
        f"stub report: {totals['definitions']} definitions, {totals['feature_steps']} feature steps in "
        f"{totals['feature_files']} files (target < 1 s)"
    )
    for mode, (times, cpu) in results.items():
        print(
            f"  {mode:<4}: median {statistics.median(times):.3f} s wall, {statistics.median(cpu):.3f} s CPU "
            f"over {args.runs} runs (wall min {min(times):.3f} s, max {max(times):.3f} s)"
        )
    print("  (CPU time is the figure to compare on a shared, loaded machine)")
    print(
        "  "
        + ", ".join(f"{k} {totals[k]}" for k in ("implemented", "stubs", "hollow", "unused", "undefined"))
    )


if __name__ == "__main__":
    main()
