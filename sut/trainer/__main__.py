"""``python -m sut.trainer``: the drift monitor and retrainer (see docs/architecture.md)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn

from sut.trainer.app import create_app
from sut.trainer.drift import DriftThresholds
from sut.trainer.gateway_client import GatewayAdmin
from sut.trainer.monitor import DriftMonitor
from sut.trainer.runs import RunLog


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sut.trainer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gateway", required=True, help="gateway base URL")
    parser.add_argument("--admin-token", default=os.environ.get("SUT_ADMIN_TOKEN"))
    parser.add_argument("--artifact-root", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None, help="where runs.jsonl is appended")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between drift checks")
    parser.add_argument("--window", type=int, default=400, help="rows in the recent window")
    parser.add_argument("--min-window", type=int, default=200, help="smallest window that is judged")
    parser.add_argument("--psi", type=float, default=0.25, help="PSI above this on any feature is drift")
    parser.add_argument(
        "--ks-p", type=float, default=0.01, help="KS p-value below this on any feature is drift"
    )
    parser.add_argument("--holdout", type=float, default=0.25, help="share of labelled rows held out")
    args = parser.parse_args(argv)
    if not args.admin_token:
        parser.error("--admin-token (or SUT_ADMIN_TOKEN) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s trainer %(levelname)s %(message)s")
    runs_file = None
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        runs_file = args.data_dir / "runs.jsonl"
    monitor = DriftMonitor(
        GatewayAdmin(args.gateway, args.admin_token),
        args.artifact_root,
        RunLog(runs_file),
        thresholds=DriftThresholds(psi=args.psi, ks_p=args.ks_p, min_window=args.min_window),
        window=args.window,
        holdout=args.holdout,
    )
    uvicorn.run(create_app(monitor, args.interval), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
