"""Where the project's own test command spends its time: each stage of ``tools/run_tests.sh``, each lane,
and the slowest tests of each JUnit report, next to the speed targets (``TARGETS``).

    python benchmarks/ci_stages.py [--run] [--log FILE] [--reports DIR] [--top 5]

``--run`` runs ``bash tools/run_tests.sh`` first (its output also goes to ``--log``); without it the log
and the JUnit reports of an earlier run are read (default ``reports/ci-stages.log``: save a run's output
there, e.g. ``bash tools/run_tests.sh | tee reports/ci-stages.log``). Stage times come from the stage
headers the script prints (``=== name === (HH:MM:SS) [cpu N s, C cores]``), with the machine's busy CPU
seconds: a stage over its target is called CPU-bound (its work needs more than the target on these cores,
whatever the lanes) or waiting (cores were idle: sleeps, timeouts). The slowest tests are where to look
next. Prints figures and ratios to the targets; asserts nothing (the machine's load decides them). The
CPU figures are the whole machine's: on a shared machine other tenants' work counts too.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The speed targets in seconds, by the beginning of a stage's name (measured on a 2-core machine).
TARGETS = {
    "unit and integration tests": 180.0,
    "acceptance features: pytest, local backend": 90.0,
    "behave (local), the MLServer target (local) and a project of its own": 180.0,
}
TOTAL_TARGET_S = 600.0  # the whole command with images already built
#: Stages that a machine with everything installed and built skips (not counted against the total).
SETUP_STAGES = ("system packages", "Python environment", "offline Docker images")

_STAGE = re.compile(
    r"^=== (?P<name>.+?) === \((?P<at>\d\d:\d\d:\d\d)\)(?: \[cpu (?P<cpu>\d+) s, (?P<cores>\d+) cores\])?$"
)
#: A stage whose cores were busy at least this share of its time had no core to spare: only less work
#: (fewer service starts, shared clusters) makes it faster, not more lanes.
CPU_BOUND = 0.85
_LANE = re.compile(r"^--- lane (?P<name>\S+): (?P<result>.+?) after (?P<seconds>\d+)s")


@dataclass
class Stage:
    name: str
    started: int  # seconds since midnight
    seconds: int = 0
    cpu_at_start: int | None = None  # the machine's busy CPU seconds when it started (all cores)
    cores: int | None = None
    cpu_seconds: int | None = None  # busy CPU seconds during the stage (the whole machine's)

    @property
    def busy(self) -> float | None:
        """The share of the machine's cores busy during the stage (0..1)."""
        if self.cpu_seconds is None or not self.cores or not self.seconds:
            return None
        return self.cpu_seconds / (self.seconds * self.cores)

    def cause(self, target: float) -> str:
        """Why a stage over its target took that long, from its CPU use."""
        if self.busy is None or self.cores is None or self.cpu_seconds is None:
            return "no CPU figures in the log (a run of an older run_tests.sh)"
        floor = self.cpu_seconds / self.cores
        if self.busy >= CPU_BOUND:
            return (
                f"CPU-bound: {self.cpu_seconds} CPU-s of work, at least {floor:.0f} s on {self.cores} cores"
                f" ({floor / target:.1f}x the target): only less work helps (fewer service starts)"
            )
        return f"{self.busy:.0%} of the cores busy: it waits (fixed sleeps, timeouts), more lanes would help"


def _clock(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def stages(log: str) -> list[Stage]:
    """Each stage with its duration: from its header to the next one (the last, ``done``, has none)."""
    found = [
        Stage(m["name"], _clock(m["at"]), 0, _int(m["cpu"]), _int(m["cores"]))
        for m in map(_STAGE.match, log.splitlines())
        if m
    ]
    for this, following in itertools.pairwise(found):
        this.seconds = (following.started - this.started) % 86400  # a run over midnight
        if this.cpu_at_start is not None and following.cpu_at_start is not None:
            this.cpu_seconds = following.cpu_at_start - this.cpu_at_start
    return found


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def lanes(log: str) -> list[tuple[str, str, int]]:
    """(lane, result, seconds) of every lane the script ran."""
    return [(m["name"], m["result"], int(m["seconds"])) for m in map(_LANE.match, log.splitlines()) if m]


def slowest(report: Path, top: int) -> tuple[int, float, list[tuple[float, str]]]:
    """(tests, their summed time, the ``top`` slowest as (seconds, id)) of a JUnit XML report."""
    cases = []
    for case in ET.parse(report).getroot().iter("testcase"):
        cases.append((float(case.get("time") or 0.0), f"{case.get('classname', '')}::{case.get('name', '')}"))
    cases.sort(reverse=True)
    return len(cases), sum(t for t, _ in cases), cases[:top]


def _target(name: str) -> float | None:
    return next((t for prefix, t in TARGETS.items() if name.startswith(prefix)), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", action="store_true", help="run tools/run_tests.sh first")
    parser.add_argument("--log", type=Path, default=ROOT / "reports" / "ci-stages.log")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--top", type=int, default=5, help="slowest tests shown per report")
    args = parser.parse_args(argv)
    status = 0
    if args.run:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        with args.log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "tools/run_tests.sh"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            for line in proc.stdout:  # shown as it comes: the run takes most of an hour
                sys.stdout.write(line)
                out.write(line)
            status = proc.wait()
    if not args.log.exists():
        print(f"no log at {args.log}: pass --run, or save a run's output there", file=sys.stderr)
        return 2
    found = stages(args.log.read_text(errors="replace"))
    if not found:
        print(f"{args.log} has no stage headers (=== name === (HH:MM:SS))", file=sys.stderr)
        return 2
    print(f"{'stage':<90} {'s':>6} {'target':>7} {'ratio':>6} {'CPU-s':>6} {'busy':>5}")
    causes = []
    for stage in found[:-1]:
        target = _target(stage.name)
        figures = f"{target:>7.0f} {stage.seconds / target:>6.2f}" if target else f"{'':>7} {'':>6}"
        cpu = f"{stage.cpu_seconds:>6} {stage.busy:>5.0%}" if stage.busy is not None else f"{'':>6} {'':>5}"
        print(f"{stage.name[:90]:<90} {stage.seconds:>6} {figures} {cpu}")
        if target and stage.seconds > target:
            causes.append(f"  {stage.name[:60]}: {stage.seconds} s > {target:.0f} s; {stage.cause(target)}")
    counted = sum(s.seconds for s in found[:-1] if not s.name.startswith(SETUP_STAGES))
    print(f"{'total without setup (packages, venv, images)':<90} {counted:>6} {TOTAL_TARGET_S:>7.0f} "
          f"{counted / TOTAL_TARGET_S:>6.2f}")  # fmt: skip
    print("targets met" if not causes and counted <= TOTAL_TARGET_S else "over target, and why:")
    for line in causes:
        print(line)
    for name, result, seconds in lanes(args.log.read_text(errors="replace")):
        print(f"  lane {name}: {result}, {seconds} s")
    for report in sorted(args.reports.glob("*.xml")):
        try:
            count, total, top = slowest(report, args.top)
        except ET.ParseError as exc:
            print(f"{report.name}: unreadable ({exc})")
            continue
        print(f"\n{report.name}: {count} tests, {total:.0f} s in tests; slowest:")
        for seconds, ident in top:
            print(f"  {seconds:>7.1f} s  {ident}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
