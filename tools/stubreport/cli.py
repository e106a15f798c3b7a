"""Command line: ``python tools/stub_report.py [PATH] [options]`` (exit codes in :data:`EXIT_CODES`)."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .compare import CompareError, compare, validate
from .config import ConfigError
from .explain import explain
from .model import RUNNERS
from .render import RENDERERS
from .report import EmptySuite, NoSuite, build_report

OK, THRESHOLD, USAGE, INTERNAL = 0, 1, 2, 3
EXIT_CODES = f"""exit codes:
  {OK}  every threshold met
  {THRESHOLD}  a threshold exceeded (--max-*, --fail-under); the report is still printed
  {USAGE}  usage error: bad option, missing path, unreadable --trace or --compare file, no suite of a
     known runner found, or a suite with no step definitions (nothing to take a percentage of)
  {INTERNAL}  an internal error of this tool (never mistaken for a pass or for a threshold)"""
#: option -> (totals field, human name)
LIMITS = {
    "max_stubs": ("stubs", "stubs"),
    "max_hollow": ("hollow", "hollow definitions"),
    "max_undefined": ("undefined", "undefined steps"),
    "max_ambiguous": ("ambiguous", "ambiguous steps"),
    "max_errors": ("errors", "unreadable files"),
}


class UsageError(Exception):
    pass


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stub_report.py",
        description=(
            "How much of a BDD suite is stub, hollow, undefined, ambiguous or unused, as its runner sees "
            "it (our registry, behave, pytest-bdd or Rust cucumber). Static: nothing of the suite is run."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", nargs="?", type=Path, default=Path("."), help="the suite's root (default: .)")
    p.add_argument(
        "--runner", choices=["auto", *RUNNERS], default="auto", help="runner model (default: detected)"
    )
    p.add_argument("--features", type=Path, action="append", help="feature files or directories (repeatable)")
    p.add_argument("--steps", type=Path, action="append", help="step code directories (registry; repeatable)")
    p.add_argument("--trace", type=Path, help="JSON-lines step trace written by the harness during a run")
    p.add_argument("--format", choices=sorted(RENDERERS), default="text")
    p.add_argument(
        "--compare", type=Path, metavar="PREVIOUS.json", help="show the change against an earlier JSON"
    )
    p.add_argument(
        "--explain",
        action="append",
        metavar="STEP",
        help="why a definition got its verdict: a function name, FILE:LINE or a step's text",
    )
    p.add_argument("--fail-under", type=_percent, metavar="PCT", help="exit 1 if implemented %% is below PCT")
    for option, (_, name) in LIMITS.items():
        p.add_argument(
            f"--{option.replace('_', '-')}", type=_count, metavar="N", help=f"exit 1 if more than N {name}"
        )
    return p


def _load_previous(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--compare {path}: {exc}") from exc
    try:
        validate(data)
    except CompareError as exc:
        raise UsageError(f"--compare {path}: not a stub report JSON ({exc})") from exc
    return data


def violations(totals: dict[str, Any], args: argparse.Namespace) -> list[str]:
    found: list[str] = []
    if args.fail_under is not None and totals["percent_implemented"] < args.fail_under:
        found.append(f"implemented {totals['percent_implemented']:.1f}% is under {args.fail_under:g}%")
    for option, (field, name) in LIMITS.items():
        limit = getattr(args, option)
        if limit is not None and totals[field] > limit:
            found.append(f"{totals[field]} {name} (at most {limit} allowed)")
    return found


def run(args: argparse.Namespace) -> int:
    root = args.path
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    for path, option in [
        *((f, "--features") for f in args.features or []),
        *((s, "--steps") for s in args.steps or []),
    ]:
        if not path.exists():
            raise UsageError(f"{option} {path}: no such file or directory")
    if args.trace is not None and not args.trace.is_file():
        raise UsageError(f"--trace {args.trace}: no such file")
    previous = _load_previous(args.compare) if args.compare is not None else None
    try:
        report = build_report(
            root.resolve(),
            runner=None if args.runner == "auto" else args.runner,
            features=[f.resolve() for f in args.features] if args.features else None,
            steps=[s.resolve() for s in args.steps] if args.steps else None,
            trace_file=args.trace.resolve() if args.trace else None,
        )
    except (NoSuite, EmptySuite, ConfigError) as exc:
        raise UsageError(str(exc)) from exc
    if args.explain:
        sys.stdout.write(explain(report, args.explain))
        return OK
    data = report.as_dict()
    if previous is not None:
        try:
            data["compare"] = compare(data, previous)
        except CompareError as exc:
            raise UsageError(f"--compare {args.compare}: {exc}") from exc
    sys.stdout.write(RENDERERS[args.format](data))
    problems = violations(data["totals"], args)
    for problem in problems:
        print(f"stub_report: threshold exceeded: {problem}", file=sys.stderr)
    return THRESHOLD if problems else OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help is 0, a bad option is 2
        return int(exc.code or 0)
    try:
        return run(args)
    except UsageError as exc:
        print(f"stub_report: {exc}", file=sys.stderr)
        return USAGE
    except Exception:
        traceback.print_exc()
        print("stub_report: internal error (exit 3)", file=sys.stderr)
        return INTERNAL
