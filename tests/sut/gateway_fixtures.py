"""Real gateway and worker processes for the gateway tests (started with ``sut.launcher``'s argv).

Each service runs in its own process group with its stderr in a log file; ``stop``/``kill`` act on
that group only, and the fixtures stop everything they started even when a test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.waiting import WaitTimeout, until
from sut import launcher

TOKEN = "gateway-test-token"
JOIN_TOKEN = "gateway-test-join-token"
#: What a legitimate worker sends to the registry (tests that speak the registry protocol themselves).
JOIN = {"Authorization": f"Bearer {JOIN_TOKEN}"}
#: Tokens reach the services through the environment, never their command lines.
SERVICE_ENV = launcher.service_env(admin_token=TOKEN, join_token=JOIN_TOKEN)
STARTUP_TIMEOUT = 60.0
ROW = [0.5, -1.0, 2.0, 0.25]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    """Poll ``check`` until true; return the seconds it took, or fail naming ``what``."""
    start = time.monotonic()
    try:
        until(check, timeout=timeout, what=what, interval=interval)
    except WaitTimeout as exc:
        pytest.fail(str(exc))
    return time.monotonic() - start


def infer_body(rows: list[list[float]] | None = None) -> dict[str, Any]:
    rows = rows or [ROW]
    return {
        "inputs": [
            {
                "name": "input",
                "shape": [len(rows), 4],
                "datatype": "FP32",
                "data": [x for r in rows for x in r],
            }
        ]
    }


@dataclass
class Service:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, SIGKILL it if it does not exit in time (SIGCONT first: it may be paused)."""
        if not self.alive():
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)


def _spawn(argv: list[str], log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **SERVICE_ENV},
        )


class Cluster:
    """A gateway and its workers in a temp dir; ``close`` stops all of them."""

    def __init__(self, root: Path, **gateway_options: Any) -> None:
        self.root = root
        self.artifact_root = root / "artifacts"
        self.data_dir = root / "data"
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        self.gateway_options = gateway_options
        self.gateway: Service | None = None
        self.workers: list[Service] = []
        self.admin = {"Authorization": f"Bearer {TOKEN}"}
        self.client = httpx.Client(timeout=30.0, trust_env=False)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    def start_gateway(self, port: int | None = None) -> Service:
        port = port or free_port()
        argv = launcher.gateway_command(
            port=port,
            data_dir=self.data_dir,
            artifact_root=self.artifact_root,
            **self.gateway_options,
        )
        log_path = self.root / f"gateway-{port}.log"
        service = Service(f"http://127.0.0.1:{port}", _spawn(argv, log_path), log_path)
        self.gateway = service
        self._wait_live(service, "gateway")
        return service

    def start_worker(self, name: str, memory_budget: int = 0, pool: str | None = None) -> Service:
        port = free_port()
        argv = launcher.worker_command(
            port=port,
            gateway_url=self.url,
            artifact_root=self.artifact_root,
            name=name,
            grace_period=5.0,
            memory_budget=memory_budget,
            pool=pool,
        )
        log_path = self.root / f"worker-{name}.log"
        service = Service(f"http://127.0.0.1:{port}", _spawn(argv, log_path), log_path)
        self.workers.append(service)
        self._wait_live(service, f"worker {name}")
        return service

    def _wait_live(self, service: Service, what: str) -> None:
        def live() -> bool:
            if not service.alive():
                pytest.fail(f"{what} exited with {service.proc.returncode}:\n{service.log()[-3000:]}")
            try:
                return self.client.get(service.url + "/v2/health/live", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(f"{what} to answer", live, STARTUP_TIMEOUT, interval=0.1)

    # -- admin helpers ------------------------------------------------------------------------------
    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(self.url + path, headers=self.admin, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.post(self.url + path, json=json, headers=self.admin, **kw)

    def register_version(self, model: str, artifact_uri: str, **extra: Any) -> dict[str, Any]:
        r = self.post(f"/admin/models/{model}/versions", {"artifact_uri": artifact_uri, **extra})
        assert r.status_code == 201, r.text
        return r.json()

    def workers_holding(self, model: str, version: str) -> list[str]:
        workers = self.get("/admin/workers").json()
        return [
            w["id"] for w in workers if {"name": model, "version": version} in w["models"] and w["healthy"]
        ]

    def wait_holders(self, model: str, version: str, count: int, timeout: float = 60.0) -> None:
        wait_until(
            f"{count} healthy worker(s) holding {model} v{version}",
            lambda: len(self.workers_holding(model, version)) == count,
            timeout,
            interval=0.1,
        )

    def infer(self, model: str = "demo", version: str | None = None, **kw: Any) -> httpx.Response:
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        return self.client.post(self.url + path, json=kw.pop("body", None) or infer_body(), **kw)

    def close(self) -> None:
        for service in [*self.workers, self.gateway]:
            if service is not None:
                service.stop()
        self.client.close()


def worker_available() -> bool:
    """The worker package exists (it is built in parallel; routing tests skip until it does)."""
    return (Path(__file__).resolve().parents[2] / "sut" / "worker" / "__main__.py").exists()
