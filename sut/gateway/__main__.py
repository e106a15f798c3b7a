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
    p.add_argument("--admin-token", default=os.environ.get("SUT_ADMIN_TOKEN"), help="or env SUT_ADMIN_TOKEN")
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
