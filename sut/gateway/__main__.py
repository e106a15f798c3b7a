"""``python -m sut.gateway``: parse the flags, build the app, serve it with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn


def _positive(kind: type, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sut.gateway", description="The reference cluster's gateway.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--db", default=None, help="sqlite:///PATH or postgresql://... (default: <data-dir>/catalog.db)"
    )
    p.add_argument("--data-dir", type=Path, required=True, help="catalog database and backups")
    p.add_argument("--artifact-root", type=Path, required=True, help="artifact_uri values are relative to it")
    p.add_argument(
        "--admin-token",
        default=os.environ.get("SUT_ADMIN_TOKEN"),
        help="prefer env SUT_ADMIN_TOKEN: a command line is visible to every user in `ps`",
    )
    p.add_argument(
        "--join-token-file",
        type=Path,
        default=None,
        help="file holding the workers' join token (else env SUT_JOIN_TOKEN); rewrite it to rotate the token",
    )
    p.add_argument(
        "--join-token-overlap",
        type=_positive(float, "--join-token-overlap"),
        default=60.0,
        help="seconds the previous join token stays valid after a rotation (default 60)",
    )
    p.add_argument(
        "--failover-audit-limit",
        type=_positive(int, "--failover-audit-limit"),
        default=1000,
        help="entries kept in the provider lock's audit trail (oldest dropped and counted; default 1000)",
    )
    p.add_argument("--heartbeat-interval", type=_positive(float, "--heartbeat-interval"), default=1.0)
    p.add_argument("--expiry-misses", type=_positive(int, "--expiry-misses"), default=3)
    p.add_argument("--upstream-timeout", type=_positive(float, "--upstream-timeout"), default=5.0)
    p.add_argument(
        "--clock-offset",
        type=float,
        default=float(os.environ.get("SUT_CLOCK_OFFSET_S", "0") or 0),
        help="seconds added to the system clock by the time-based routing rules (or env SUT_CLOCK_OFFSET_S)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.admin_token:
        print("error: --admin-token (or env SUT_ADMIN_TOKEN) is required", file=sys.stderr)
        return 2
    from sut.token_source import TokenError, TokenSource

    try:
        join_token = TokenSource.from_options(args.join_token_file, "SUT_JOIN_TOKEN")
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if join_token is None:
        print("error: --join-token-file (or env SUT_JOIN_TOKEN) is required", file=sys.stderr)
        return 2
    if join_token.read() == args.admin_token:
        print("error: the join token must differ from the admin token", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    from sut.gateway.app import GatewayConfig, create_app

    args.data_dir.mkdir(parents=True, exist_ok=True)
    config = GatewayConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        artifact_root=args.artifact_root,
        admin_token=args.admin_token,
        db=args.db,
        heartbeat_interval=args.heartbeat_interval,
        expiry_misses=args.expiry_misses,
        upstream_timeout=args.upstream_timeout,
        join_token=join_token,
        join_token_overlap=args.join_token_overlap,
        failover_audit_limit=args.failover_audit_limit,
        clock_offset_s=args.clock_offset,
    )
    try:
        app = create_app(config)
    except Exception as exc:  # a bad --db or unreadable catalog: say so in one line, no traceback
        print(f"error: cannot open the catalog: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
