"""Command line: ``python tools/stub_report.py [options]``.

Exit codes (CI gates rely on them): 0 within every threshold, 1 a threshold exceeded, 2 usage error
(bad option, missing directory, unreadable ``--trace``/``--compare`` file), 3 an internal error of this
tool (never mistaken for a pass or for a threshold).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cache import default_dir
from .compare import CompareError, compare
from .render import RENDERERS
from .report import build_report

OK, THRESHOLD, USAGE, INTERNAL = 0, 1, 2, 3
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
        description="How much of the BDD suite is stub, hollow, undefined, ambiguous or unused.",
    )
    p.add_argument(
        "--features", type=Path, default=Path("features"), help="feature files (default: features)"
    )
    p.add_argument(
        "--steps",
        type=Path,
        action="append",
        default=None,
        help="step modules dir (repeatable; default: steps)",
    )
    p.add_argument("--trace", type=Path, help="JSON-lines step trace written by the harness during a run")
    p.add_argument("--format", choices=sorted(RENDERERS), default="text")
    p.add_argument(
        "--compare", type=Path, metavar="PREVIOUS.json", help="show the change against an earlier JSON"
    )
    p.add_argument("--fail-under", type=_percent, metavar="PCT", help="exit 1 if implemented %% is below PCT")
    p.add_argument(
        "--no-cache", action="store_true", help="do not cache parsed feature files and pattern matches"
    )
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
    if not isinstance(data, dict):
        raise UsageError(f"--compare {path}: not a stub report JSON")
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
    steps = args.steps or [Path("steps")]
    for path, option in [(args.features, "--features"), *((s, "--steps") for s in steps)]:
        if not path.exists():
            raise UsageError(f"{option} {path}: no such file or directory")
    if args.trace is not None and not args.trace.is_file():
        raise UsageError(f"--trace {args.trace}: no such file")
    previous = _load_previous(args.compare) if args.compare is not None else None

    cache_dir = None if args.no_cache else default_dir()
    data = build_report(args.features, steps, args.trace, cache_dir=cache_dir).as_dict()
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
