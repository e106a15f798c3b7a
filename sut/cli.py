"""``sut``: start a local reference cluster and drive its admin API.

    sut up --workers N [--port P] [--db URL] [--data-dir DIR]
    sut status [--json]
    sut swap MODEL VERSION
    sut rollback MODEL
    sut rotate-join-token [--new-token T]
    sut down

Commands other than ``up`` find the gateway from ``--gateway``, else ``$SUT_GATEWAY``, else the
cluster ``sut up`` started last (the state file, see :mod:`sut.cluster_state`). Exit codes: 0 done,
1 failed (one line on stderr says why), 2 usage error.

This module parses the arguments and dispatches; the commands are in :mod:`sut.cli_cluster` (``up``,
``down``) and :mod:`sut.cli_admin` (the others).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sut import cluster_state
from sut.cli_admin import CliError, cmd_rollback, cmd_rotate_join_token, cmd_status, cmd_swap
from sut.cli_cluster import cmd_down, cmd_up

# --- argument parsing ------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--gateway", metavar="URL", help="gateway URL (default: $SUT_GATEWAY, else the last `sut up`)"
    )
    target.add_argument("--token", help="admin token (default: $SUT_ADMIN_TOKEN, else the state file)")
    target.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the gateway (default 60)"
    )

    parser = argparse.ArgumentParser(
        prog="sut", description="Run and drive a local reference serving cluster."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "up", help="start a gateway and N workers in the background", description=cmd_up.__doc__
    )
    up.add_argument(
        "--workers", type=_positive_int, default=2, metavar="N", help="number of workers (default 2)"
    )
    up.add_argument("--port", type=_port, default=0, metavar="P", help="gateway port (default: a free one)")
    up.add_argument("--db", metavar="URL", help="catalog database (default sqlite:///<data-dir>/catalog.db)")
    up.add_argument("--data-dir", metavar="DIR", help="default: $XDG_STATE_HOME/sut/<name>")
    up.add_argument("--name", help="cluster name (default sut-<port>)")
    up.add_argument("--token", help="admin token (default: $SUT_ADMIN_TOKEN, else a generated one)")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    up.add_argument(
        "--join-token-overlap",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds the previous join token stays valid after `sut rotate-join-token` (default 60)",
    )
    up.set_defaults(func=cmd_up)

    status = sub.add_parser("status", parents=[target], help="workers, models, versions and aliases")
    status.add_argument("--json", action="store_true", help="print the gateway's status document as JSON")
    status.set_defaults(func=cmd_status)

    swap = sub.add_parser("swap", parents=[target], help="hot-swap MODEL to VERSION on every worker")
    swap.add_argument("model", metavar="MODEL")
    swap.add_argument("version", metavar="VERSION")
    swap.set_defaults(func=cmd_swap)

    rollback = sub.add_parser("rollback", parents=[target], help="swap MODEL back to its previous version")
    rollback.add_argument("model", metavar="MODEL")
    rollback.set_defaults(func=cmd_rollback)

    rotate = sub.add_parser(
        "rotate-join-token",
        parents=[target],
        help="give the workers a new join token, without a restart",
        description=cmd_rotate_join_token.__doc__,
    )
    rotate.add_argument("--new-token", dest="new_token", help="the new token (default: a generated one)")
    rotate.set_defaults(func=cmd_rotate_join_token)

    down = sub.add_parser("down", parents=[target], help="stop a cluster started by `sut up`")
    down.add_argument(
        "--name", help="the cluster to stop (default: by --gateway/$SUT_GATEWAY, else the last)"
    )
    down.add_argument("--all", action="store_true", help="stop every cluster in the state file")
    down.add_argument(
        "--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL (default 10)"
    )
    down.set_defaults(func=cmd_down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        commands = "up, status, swap, rollback, rotate-join-token, down"
        print(f"sut: error: a command is required ({commands})", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (CliError, cluster_state.StateError) as exc:
        print(f"sut {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sut {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sut {args.command}: interrupted", file=sys.stderr)
        return 130
