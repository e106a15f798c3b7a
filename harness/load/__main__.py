"""Run a load profile from the command line, judge it, and write its report.

    python -m harness.load --url http://127.0.0.1:8000 --profile steady --model demo --env staging \\
        [--profiles fixtures/load_profiles.toml] [--load-workers N] [--watch gateway=PID] \\
        [--watch-container worker-1=ID] [--baseline FILE [--save-baseline]] [--min-increase 0.5] \\
        [--alpha 0.01] [--report-dir reports/load] \\
        [--pushgateway URL] [--label feature=hot_swap --label scenario=...]

Exit status: 0 when the SLO is met and no regression was found, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.baseline import DEFAULT_MIN_INCREASE, BaselineFile
from harness.load.profiles import ProfileBook, ProfileError
from harness.load.session import ProfileSession
from harness.load.settings import DEFAULT_PROFILES
from harness.report.resources import Watched


def _pairs(values: list[str], what: str, parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    out = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            parser.error(f"{what} takes NAME=VALUE (got {value!r})")
        out.append((name, rest))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the target's base URL, http(s)://host:port")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--profiles", default=str(DEFAULT_PROFILES), help="the profiles TOML file")
    parser.add_argument("--model", default=None, help="fills {model} in the endpoints' paths")
    parser.add_argument("--env", default=None, help="judge the run against [slo.ENV]")
    parser.add_argument("--load-workers", type=int, default=0, help="Locust master + N worker processes")
    parser.add_argument("--processes", type=int, default=1, help="Locust --processes (forked)")
    parser.add_argument("--watch", action="append", default=[], help="NAME=PID: CPU/memory from /proc")
    parser.add_argument("--watch-container", action="append", default=[], help="NAME=ID: Docker stats")
    parser.add_argument("--baseline", default=None, help="a baseline JSON file to compare with (or save to)")
    parser.add_argument("--save-baseline", action="store_true", help="record this run in --baseline")
    parser.add_argument("--key", default=None, help="the baseline entry (default: the profile's name)")
    parser.add_argument(
        "--min-increase",
        type=float,
        default=DEFAULT_MIN_INCREASE,
        help="a regression's least median increase over the slowest baseline run (0.5 = +50%%)",
    )
    parser.add_argument("--alpha", type=float, default=0.01, help="Mann-Whitney significance level")
    parser.add_argument("--report-dir", default="reports/load")
    parser.add_argument("--workdir", default=None, help="where Locust's files go (default: under report-dir)")
    parser.add_argument("--pushgateway", default=None, help="push the run's figures to this Pushgateway")
    parser.add_argument("--label", action="append", default=[], help="feature=..., scenario=..., target=...")
    args = parser.parse_args(argv)

    watch = [Watched(n, pid=int(v)) for n, v in _pairs(args.watch, "--watch", parser)]
    watch += [Watched(n, container=v) for n, v in _pairs(args.watch_container, "--watch-container", parser)]
    try:
        book = ProfileBook.load(args.profiles)
        if args.env:
            book.slo_for(args.env, args.profile)  # a typo fails now, not after the run
        session = ProfileSession.start(
            args.url,
            book,
            args.profile,
            model=args.model,
            workdir=Path(args.workdir or Path(args.report_dir) / "work"),
            watch=watch,
            load_workers=args.load_workers,
            processes=args.processes,
            labels=dict(_pairs(args.label, "--label", parser)),
        )
    except (ProfileError, ValueError) as exc:
        parser.error(str(exc))
    baseline = BaselineFile.load(args.baseline) if args.baseline else None
    outcome = session.finish(
        environment=args.env,
        book=book,
        baseline=baseline,
        key=args.key,
        save_baseline=args.save_baseline,
        min_increase=args.min_increase,
        alpha=args.alpha,
    )
    paths = outcome.write(args.report_dir, pushgateway=args.pushgateway)
    print(f"profile {args.profile!r}: {len(outcome.samples)} requests")
    if outcome.verdict is not None:
        print(outcome.verdict)
    if outcome.comparison is not None:
        print(outcome.comparison)
    elif args.save_baseline:
        print(f"baseline saved: {args.baseline} [{args.key or args.profile}]")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
