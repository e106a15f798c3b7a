"""``python -m sut.worker``: the command line of the worker (see docs/architecture.md)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from sut.errors import DEFAULT_MAX_BODY_BYTES
from sut.token_source import TokenError, TokenSource
from sut.worker.app import WorkerConfig, WorkerRuntime, create_app
from sut.worker.server import WorkerServer

SHUTDOWN_TIMEOUT = 2.0  # after the drain: closing idle connections only


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sut.worker", description="sut model-serving worker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port (logged)")
    parser.add_argument("--gateway", default="", help="gateway URL to register with; empty = run alone")
    parser.add_argument(
        "--advertise-url", default=None, help="how the gateway reaches us (default http://host:port)"
    )
    parser.add_argument("--artifact-root", type=Path, default=Path("."))
    parser.add_argument("--memory-budget", type=int, default=0, help="bytes; 0 = unlimited")
    parser.add_argument("--grace-period", type=float, default=10.0, help="SIGTERM drain deadline, seconds")
    parser.add_argument("--name", default=None, help="a label only; the gateway assigns the id")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--pool", default="default", help="the pool the gateway lists us in (providers)")
    parser.add_argument(
        "--join-token-file",
        type=Path,
        default=None,
        help="file holding the cluster's join token, re-read when it changes (else env SUT_JOIN_TOKEN)",
    )
    args = parser.parse_args(argv)
    if args.memory_budget < 0:
        parser.error("--memory-budget must be >= 0")
    if args.grace_period < 0:
        parser.error("--grace-period must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        join_token = TokenSource.from_options(args.join_token_file, "SUT_JOIN_TOKEN")
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    config = WorkerConfig(
        artifact_root=args.artifact_root,
        name=args.name or f"worker-{args.port}",
        gateway_url=args.gateway or "",
        memory_budget=args.memory_budget,
        grace_period=args.grace_period,
        max_body_bytes=args.max_body_bytes,
        join_token=join_token,
        pool=args.pool,
    )
    runtime = WorkerRuntime(config)
    uv_config = uvicorn.Config(
        create_app(config, runtime),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
    )
    server = WorkerServer(uv_config, runtime, args.advertise_url)
    server.run()
    code = 0 if server.started else 1
    if runtime.busy():
        # The grace period is over but threads still run inferences or loads: do not wait for them
        # at interpreter exit (the thread pool would join them).
        logging.getLogger("sut.worker").warning("exiting with work still running in threads")
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
