"""Partitions and latency between two services on the docker backend: a fault-proxy container per link.

The engine's kernel has no ``sch_netem`` (``tc ... netem`` answers "Specified qdisc kind is unknown"), so
links are faulted in-path, as on the local backend (:mod:`harness.faults.links`). A service whose spec
names ``links`` gets, for each peer, a small container ``link-<service>-<peer>`` on the scenario network,
made when the service is first launched and kept across its restarts. It runs
:mod:`harness.faults.proxy_server` (our own :class:`~harness.faults.proxy.FaultProxy`, stdlib only) on
the base image, with just those two source files bind-mounted read-only, so there is no image to build:

- listening on ``FORWARD_PORT``, it forwards to ``<peer>:<peer port>``: the service is given this
  address for the peer (``Placement.url_of``), e.g. a worker's ``--gateway``;
- listening on ``BACKWARD_PORT``, it forwards to ``<service>:<its port>``: the service advertises this
  address (``Placement.reached_by``), so the peer's connections to it cross the proxy.

Upstream names are resolved per connection, so a restarted container is found again. The proxy's control
endpoint is published on 127.0.0.1 only; the test process sets faults through it. Neither service is told.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness import waiting
from harness.backends.base import BackendError

CONTROL_PORT = 9000  # the proxy's control endpoint inside its container
FORWARD_PORT = 10001  # service -> peer
BACKWARD_PORT = 10002  # peer -> service
PROXY_PYTHON = "python3"  # the base image's interpreter
MOUNT_ROOT = "/opt/servingbdd"  # the proxy sources are bind-mounted under it, read-only
REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_SOURCES = ("harness/faults/proxy.py", "harness/faults/proxy_server.py")  # stdlib only
PROXY_STARTUP_TIMEOUT_S = 60.0


@dataclass
class _Link:
    service: str
    peer: str
    alias: str
    container: Any
    control: str | None = None  # http://127.0.0.1:<published control port>, once it answered


class DockerLinks:
    """The fault-proxy containers of one scenario, by (service, peer)."""

    def __init__(self, client: Any, *, network: str, image: str, labels: dict[str, str]) -> None:
        self.client = client
        self.network = network
        self.image = image
        self.labels = labels
        self._links: dict[tuple[str, str], _Link] = {}
        self._http = httpx.Client(timeout=10.0, trust_env=False)

    # -- wiring --------------------------------------------------------------------------------------
    def ensure(self, service: str, peer: str, service_port: int, peer_port: int) -> None:
        """Make (once) and await the proxy container of the link between ``service`` and ``peer``."""
        key = (service, peer)
        if key in self._links:
            return
        alias = f"link-{service}-{peer}"
        container = self._run(alias, service, peer, service_port, peer_port)
        link = _Link(service, peer, alias, container)
        self._links[key] = link
        self._await(link)

    def forward_url(self, service: str, peer: str) -> str:
        return f"http://{self._links[(service, peer)].alias}:{FORWARD_PORT}"

    def backward_url(self, service: str, peer: str) -> str:
        return f"http://{self._links[(service, peer)].alias}:{BACKWARD_PORT}"

    # -- faults --------------------------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        link = self._link(a, b)
        for direction in ("forward", "backward"):
            self._change(link, direction, {"mode": "blackhole"})

    def heal(self, a: str, b: str) -> None:
        link = self._link(a, b)
        for direction in ("forward", "backward"):
            self._change(link, direction, {"heal": True})

    def heal_all(self) -> None:
        for link in list(self._links.values()):
            with contextlib.suppress(Exception):  # heal what can be healed; teardown removes the rest
                self.heal(link.service, link.peer)

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float) -> None:
        """The connections ``a`` opens to ``b``: half the delay on the way there, half on the way back."""
        if latency_s < 0 or jitter_s < 0:
            raise BackendError(f"latency and jitter must be >= 0, got {latency_s} s ± {jitter_s} s")
        link = self._link(a, b)
        direction = "forward" if link.service == a else "backward"
        self._change(link, direction, {"latency_s": latency_s / 2, "jitter_s": jitter_s / 2})

    def describe(self) -> dict[str, dict[str, object]]:
        """Each direction's current faults: ``{"worker-1->gateway": {...}, "gateway->worker-1": {...}}``."""
        out: dict[str, dict[str, object]] = {}
        for link in self._links.values():
            if link.control is None:
                continue
            links = self._http.get(f"{link.control}/links").json()
            out[f"{link.service}->{link.peer}"] = links["forward"]
            out[f"{link.peer}->{link.service}"] = links["backward"]
        return out

    def clean(self) -> bool:
        return all(
            f["mode"] == "pass" and not f["latency_s"] and not f["jitter_s"] for f in self.describe().values()
        )

    def close(self, logs_dir: Path | None = None) -> None:
        """Remove every proxy container (logs saved as ``<logs_dir>/link-...log``); never raises."""
        for link in list(self._links.values()):
            if logs_dir is not None:
                with contextlib.suppress(Exception):
                    logs_dir.mkdir(parents=True, exist_ok=True)
                    (logs_dir / f"{link.alias}.log").write_text(self._logs(link))
            with contextlib.suppress(Exception):
                link.container.remove(force=True, v=True)
        self._links.clear()
        with contextlib.suppress(Exception):
            self._http.close()

    # -- internals -----------------------------------------------------------------------------------
    def _link(self, a: str, b: str) -> _Link:
        link = self._links.get((a, b)) or self._links.get((b, a))
        if link is None:
            linked = sorted(f"{x}<->{y}" for x, y in self._links)
            raise BackendError(
                f"no fault-injectable link between {a!r} and {b!r} (links: {linked or 'none'}); "
                "the cluster must be started with links that accept network faults"
            )
        return link

    def _run(self, alias: str, service: str, peer: str, service_port: int, peer_port: int) -> Any:
        command = [
            PROXY_PYTHON, "-m", "harness.faults.proxy_server",
            "--control-port", str(CONTROL_PORT),
            "--link", f"forward={FORWARD_PORT}:{peer}:{peer_port}",
            "--link", f"backward={BACKWARD_PORT}:{service}:{service_port}",
        ]  # fmt: skip
        mounts = {
            str(REPO_ROOT / source): {"bind": f"{MOUNT_ROOT}/{source}", "mode": "ro"}
            for source in PROXY_SOURCES
        }
        try:
            return self.client.containers.run(
                self.image,
                command,
                detach=True,
                name=f"{self.network}-{alias}",
                labels={**self.labels, "servingbdd.service": alias},
                network=self.network,
                networking_config={self.network: self.client.api.create_endpoint_config(aliases=[alias])},
                ports={f"{CONTROL_PORT}/tcp": ("127.0.0.1", None)},  # 127.0.0.1 only
                volumes=mounts,
                working_dir=MOUNT_ROOT,
                environment={"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            )
        except Exception as exc:  # docker API errors: one line, no traceback
            raise BackendError(f"starting the fault proxy {alias} ({self.image}) failed: {exc}") from None

    def _await(self, link: _Link) -> None:
        def control() -> str | None:
            """The proxy's control URL once it answers there; fails at once if the proxy exited."""
            link.container.reload()
            if link.container.status not in ("created", "running"):
                raise BackendError(f"the fault proxy {link.alias} exited; its log:\n{self._logs(link)}")
            ports = link.container.attrs.get("NetworkSettings", {}).get("Ports") or {}
            bindings = ports.get(f"{CONTROL_PORT}/tcp")
            if bindings:
                url = f"http://127.0.0.1:{bindings[0]['HostPort']}"
                with contextlib.suppress(httpx.HTTPError):
                    if self._http.get(f"{url}/links", timeout=1.0).status_code == 200:
                        return url
            return None

        try:
            link.control = waiting.until(
                control,
                lambda url: url is not None,
                timeout=PROXY_STARTUP_TIMEOUT_S,
                what=f"the fault proxy {link.alias} to answer on its control port",
            )
        except waiting.WaitTimeout:
            raise BackendError(
                f"the fault proxy {link.alias} did not answer within {PROXY_STARTUP_TIMEOUT_S:g} s; "
                f"its log:\n{self._logs(link)}"
            ) from None

    def _logs(self, link: _Link) -> str:
        with contextlib.suppress(Exception):
            return link.container.logs(stdout=True, stderr=True).decode(errors="replace")
        return ""

    def _change(self, link: _Link, direction: str, change: dict[str, object]) -> None:
        try:
            answer = self._http.post(f"{link.control}/links/{direction}", json=change)
        except httpx.HTTPError as exc:
            raise BackendError(f"the fault proxy {link.alias} did not answer: {exc}") from None
        if answer.status_code != 200:
            raise BackendError(
                f"the fault proxy {link.alias} refused {change}: {answer.status_code} {answer.text}"
            )
