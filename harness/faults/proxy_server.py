"""A standalone fault-proxy process: ``python3 -m harness.faults.proxy_server`` (stdlib only).

The docker backend runs one per worker link in a small container (see :mod:`harness.faults.docker_links`);
only this file and :mod:`harness.faults.proxy` are mounted there, so nothing else may be imported.

    python3 -m harness.faults.proxy_server --control-port 9000 \\
        --link to_worker=8001:worker-1:8001 --link to_gateway=8000:gateway:8000

Each ``--link NAME=LISTEN_PORT:HOST:PORT`` is a :class:`~harness.faults.proxy.FaultProxy` listening on
``0.0.0.0:LISTEN_PORT`` that forwards to ``HOST:PORT`` (the name is resolved on every new connection,
so a restarted upstream container is found again). The control endpoint, plain HTTP with JSON:

- ``GET /links`` -> ``{NAME: {"mode", "latency_s", "jitter_s", "bandwidth_bps"}, ...}``
- ``POST /links/NAME`` with any of ``{"heal": true, "mode", "latency_s", "jitter_s", "bandwidth_bps"}``
  (applied in that order) -> the link's faults afterwards. Errors: 4xx ``{"error": "..."}``.

One line per event on stderr; SIGTERM closes the proxies and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.faults.proxy import MODES, FaultProxy, LinkFaults


def parse_link(text: str) -> tuple[str, int, str, int]:
    """``to_worker=8001:worker-1:8001`` -> ("to_worker", 8001, "worker-1", 8001)."""
    name, sep, rest = text.partition("=")
    parts = rest.split(":")
    if not sep or not name or len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=LISTEN_PORT:HOST:PORT, got {text!r}")
    return name, int(parts[0]), parts[1], int(parts[2])


def apply(proxy: FaultProxy, change: dict) -> None:
    """Apply a control request to one proxy: the fields given, on top of the current faults (or of a
    clean link with ``heal``). Everything is validated before anything changes."""
    unknown = set(change) - {"heal", "mode", "latency_s", "jitter_s", "bandwidth_bps"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    base = LinkFaults() if change.get("heal") else proxy.faults
    latency = float(change.get("latency_s", base.latency_s))
    jitter = float(change.get("jitter_s", base.jitter_s))
    bandwidth = int(change.get("bandwidth_bps", base.bandwidth_bps))
    mode = str(change.get("mode", base.mode))
    if latency < 0 or jitter < 0 or bandwidth < 0:
        raise ValueError("latency_s, jitter_s and bandwidth_bps must be >= 0")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    proxy.set_latency(latency, jitter)
    proxy.set_bandwidth(bandwidth)
    if mode != proxy.faults.mode:
        proxy.set_mode(mode)


def make_handler(proxies: dict[str, FaultProxy]) -> type[BaseHTTPRequestHandler]:
    class ControlHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/links":
                return self._answer(404, {"error": f"no such path {self.path}; try GET /links"})
            self._answer(200, {name: asdict(p.faults) for name, p in proxies.items()})

        def do_POST(self) -> None:
            prefix = "/links/"
            name = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
            proxy = proxies.get(name)
            if proxy is None:
                return self._answer(404, {"error": f"no link {name!r}; links: {sorted(proxies)}"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                change = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(change, dict):
                    raise ValueError("the body must be a JSON object")
                apply(proxy, change)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                return self._answer(400, {"error": f"bad change for link {name!r}: {exc}"})
            log(f"link {name}: {asdict(proxy.faults)}")
            self._answer(200, asdict(proxy.faults))

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per change is logged above; requests themselves are not events

    return ControlHandler


def log(message: str) -> None:
    print(f"proxy_server: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m harness.faults.proxy_server", description=__doc__)
    parser.add_argument("--link", type=parse_link, action="append", required=True, metavar="SPEC")
    parser.add_argument("--control-port", type=int, default=9000)
    parser.add_argument("--host", default="0.0.0.0", help="where the links and the control endpoint listen")
    args = parser.parse_args(argv)

    proxies: dict[str, FaultProxy] = {}
    for name, listen_port, host, port in args.link:
        proxies[name] = FaultProxy(
            host, port, listen_port=listen_port, name=name, listen_host=args.host
        ).start()
        log(f"link {name}: {args.host}:{proxies[name].port} -> {host}:{port}")
    server = ThreadingHTTPServer((args.host, args.control_port), make_handler(proxies))
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() from another thread

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"control on {args.host}:{server.server_address[1]}")
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        for proxy in proxies.values():
            proxy.close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
