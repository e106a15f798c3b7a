"""Partitions and latency between the gateway and a worker on the docker backend.

**With** ``ClusterSpec.fault_links`` (what the network features use): every worker link gets a small
fault-proxy container, ``link-worker-N`` on the scenario network, made when the worker is first started
and kept across its restarts. It runs :mod:`harness.faults.proxy_server` (our own
:class:`~harness.faults.proxy.FaultProxy`, stdlib only) on the base image, with just those two source
files bind-mounted read-only, so there is no image to build. As on the local backend
(:mod:`harness.faults.links`):

- the worker advertises ``http://link-worker-N:8001``: every connection the gateway opens to the worker
  crosses the proxy, which forwards to ``worker-N:8001`` (resolved per connection, so a restarted worker
  is found again);
- the worker is given ``--gateway http://link-worker-N:8000``: its registration and heartbeats cross the
  proxy, which forwards to ``gateway:8000``.

The proxy's control endpoint (port 9000 in the container) is published on 127.0.0.1 only; the test
process sets faults through it. ``partition`` blackholes both directions (connections stay open, data is
held, as when packets are dropped), ``set_latency`` delays the bytes, ``heal`` restores a clean link.
Neither service is told. The proxy containers carry the harness labels (``servingbdd.service`` =
``link-worker-N``) and are removed at teardown with the services.

**Without** ``fault_links``, a partition takes the worker's container off the network instead
(``docker network disconnect``): the gateway can no longer resolve or reach it, its heartbeats no longer
reach the gateway. ``heal`` connects it again under its alias. Differences from the proxy:

- a disconnected worker is unreachable *at once* (name resolution fails, connections are refused),
  where the proxy blackholes (connections hang until the deadline);
- the test process cannot reach the disconnected worker's published port either, and docker publishes
  it on a new host port when the worker reconnects (the backend's record is updated to follow it);
- a worker restarted while cut off comes back connected (a new container joins the network);
- latency would need ``tc netem`` inside the container and the NET_ADMIN capability; the reference images
  have no ``tc`` (no ``tc``, ``ip`` or ``iptables`` in them), so ``set_latency`` raises a
  :class:`BackendError` that says so. (Also checked: the host's ``tc`` run in a helper container sharing
  the worker's network namespace, with NET_ADMIN, gets "Specified qdisc kind is unknown": this engine's
  kernel has no ``sch_netem``, so netem cannot work here at all; hence the proxies.)

Wiring: ``class DockerBackend(DockerLinkFaults, ClusterBackend)``; the mixin uses the backend's
``docker_container(name)``, ``network_name`` and its service records (``_service(name).host_port``); the
backend calls ``_open_link_proxies`` at start, ``_worker_link_urls`` / ``_await_link_proxies`` when it
adds workers and ``_close_link_proxies`` at teardown.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.backends.base import BackendError

GATEWAY = "gateway"
INTERFACE = "eth0"
LINK_PREFIX = "link-"  # the proxy container's alias and service label: link-worker-N
CONTROL_PORT = 9000  # the proxy's control endpoint inside its container
PROXY_PYTHON = "python3"  # the base image's interpreter (Debian's python3, or python:3.11-slim's)
MOUNT_ROOT = "/opt/servingbdd"  # the proxy sources are bind-mounted under it, read-only
REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_SOURCES = ("harness/faults/proxy.py", "harness/faults/proxy_server.py")  # stdlib only
LABEL_SERVICE = "servingbdd.service"  # as on the services' containers (harness.backends.docker)
PROXY_STARTUP_TIMEOUT_S = 60.0


class LinkProxyContainers:
    """The fault-proxy containers of one scenario, one per worker link, by worker name."""

    def __init__(
        self,
        client: Any,
        *,
        network: str,
        image: str,
        labels: dict[str, str],
        gateway_port: int,
        worker_port: int,
        startup_timeout: float = PROXY_STARTUP_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.network = network
        self.image = image
        self.labels = labels
        self.gateway_port = gateway_port
        self.worker_port = worker_port
        self.startup_timeout = startup_timeout
        self._containers: dict[str, Any] = {}
        self._control: dict[str, str] = {}  # worker -> http://127.0.0.1:<published control port>
        self._http = httpx.Client(timeout=10.0, trust_env=False)

    # -- lifecycle -----------------------------------------------------------------------------------
    def urls_for(self, worker: str) -> tuple[str, str]:
        """(advertise URL, gateway URL) for ``worker``; its proxy container is made on first use (not
        awaited: see :meth:`wait_ready`) and reused for every later container of the worker."""
        alias = LINK_PREFIX + worker
        if worker not in self._containers:
            self._containers[worker] = self._run(worker, alias)
        return f"http://{alias}:{self.worker_port}", f"http://{alias}:{self.gateway_port}"

    def wait_ready(self) -> None:
        """Until every proxy's control endpoint answers; a proxy that exits fails at once with its log."""
        for worker in self._containers:
            if worker in self._control:
                continue
            deadline = time.monotonic() + self.startup_timeout
            while True:
                url = self._published_control(worker)
                if url is not None and self._answers(url):
                    self._control[worker] = url
                    break
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"the fault proxy of {worker} did not answer within {self.startup_timeout:.0f}s; "
                        f"its log:\n{self.logs(worker)}"
                    )
                time.sleep(0.05)

    def logs(self, worker: str) -> str:
        with contextlib.suppress(Exception):
            return self._containers[worker].logs(stdout=True, stderr=True).decode(errors="replace")
        return ""

    def close(self, logs_dir: Path | None = None) -> None:
        """Remove every proxy container (logs saved as ``<logs_dir>/link-worker-N.log``); idempotent,
        never raises."""
        for worker, container in list(self._containers.items()):
            if logs_dir is not None:
                with contextlib.suppress(Exception):
                    logs_dir.mkdir(parents=True, exist_ok=True)
                    (logs_dir / f"{LINK_PREFIX}{worker}.log").write_text(self.logs(worker))
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
        self._containers.clear()
        self._control.clear()
        with contextlib.suppress(Exception):
            self._http.close()

    # -- faults --------------------------------------------------------------------------------------
    def partition(self, worker: str) -> None:
        for link in ("to_worker", "to_gateway"):
            self._change(worker, link, {"mode": "blackhole"})

    def heal(self, worker: str) -> None:
        for link in ("to_worker", "to_gateway"):
            self._change(worker, link, {"heal": True})

    def heal_all(self) -> None:
        for worker in list(self._control):
            with contextlib.suppress(Exception):  # heal what can be healed; teardown removes the rest
                self.heal(worker)

    def set_latency(self, worker: str, from_gateway: bool, latency_s: float, jitter_s: float) -> None:
        """Half the delay on the way there, half on the way back (each chunk of bytes, as on local)."""
        link = "to_worker" if from_gateway else "to_gateway"
        self._change(worker, link, {"latency_s": latency_s / 2, "jitter_s": jitter_s / 2})

    def describe(self) -> dict[str, dict[str, object]]:
        """Each proxy's current faults, as ``{"gateway->worker-1": {...}, "worker-1->gateway": {...}}``."""
        out: dict[str, dict[str, object]] = {}
        for worker, url in self._control.items():
            links = self._http.get(f"{url}/links").json()
            out[f"{GATEWAY}->{worker}"] = links["to_worker"]
            out[f"{worker}->{GATEWAY}"] = links["to_gateway"]
        return out

    def clean(self) -> bool:
        """True when no fault is applied on any link."""
        return all(
            f["mode"] == "pass" and not f["latency_s"] and not f["jitter_s"] for f in self.describe().values()
        )

    def workers(self) -> list[str]:
        return sorted(self._containers)

    # -- internals -----------------------------------------------------------------------------------
    def _run(self, worker: str, alias: str) -> Any:
        command = [
            PROXY_PYTHON,
            "-m",
            "harness.faults.proxy_server",
            "--control-port",
            str(CONTROL_PORT),
            "--link",
            f"to_worker={self.worker_port}:{worker}:{self.worker_port}",
            "--link",
            f"to_gateway={self.gateway_port}:{GATEWAY}:{self.gateway_port}",
        ]
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
                labels={**self.labels, LABEL_SERVICE: alias},
                network=self.network,
                networking_config={self.network: self.client.api.create_endpoint_config(aliases=[alias])},
                ports={f"{CONTROL_PORT}/tcp": ("127.0.0.1", None)},  # 127.0.0.1 only
                volumes=mounts,
                working_dir=MOUNT_ROOT,
                environment={"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            )
        except Exception as exc:  # docker API errors: one line, no traceback
            raise BackendError(f"starting the fault proxy of {worker} ({self.image}) failed: {exc}") from None

    def _published_control(self, worker: str) -> str | None:
        container = self._containers[worker]
        container.reload()
        if container.status not in ("created", "running"):
            raise BackendError(
                f"the fault proxy of {worker} exited (code {container.attrs['State']['ExitCode']}); "
                f"its log:\n{self.logs(worker)}"
            )
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{CONTROL_PORT}/tcp")
        return f"http://127.0.0.1:{bindings[0]['HostPort']}" if bindings else None

    def _answers(self, url: str) -> bool:
        try:
            return self._http.get(f"{url}/links", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _change(self, worker: str, link: str, change: dict[str, object]) -> None:
        url = self._control.get(worker)
        if url is None:
            raise BackendError(
                f"{worker!r} has no fault-injectable link: start the cluster with ClusterSpec.fault_links "
                f"(workers with links: {sorted(self._control)})"
            )
        try:
            answer = self._http.post(f"{url}/links/{link}", json=change)
        except httpx.HTTPError as exc:
            raise BackendError(f"the fault proxy of {worker} did not answer at {url}: {exc}") from None
        if answer.status_code != 200:
            raise BackendError(
                f"the fault proxy of {worker} refused {change}: {answer.status_code} {answer.text}"
            )


class DockerLinkFaults:
    """Mixin for the docker backend: partition / heal / latency between the gateway and a worker."""

    # provided by the docker backend (not defined here: the mixin may come first in the MRO)
    network_name: str
    docker_container: Callable[[str], Any]
    _link_proxies: LinkProxyContainers | None = None  # with ClusterSpec.fault_links

    # -- wiring (called by the backend) ----------------------------------------------------------
    def _open_link_proxies(self, client: Any, **options: Any) -> None:
        """Put a fault-proxy container on each worker link from now on (options: see LinkProxyContainers)."""
        self._link_proxies = LinkProxyContainers(client, network=self.network_name, **options)

    def _worker_link_urls(self, worker: str, advertise_url: str, gateway_url: str) -> tuple[str, str]:
        """(advertise URL, gateway URL) for a worker: through its proxy when links are fault-injectable."""
        if self._link_proxies is None:
            return advertise_url, gateway_url
        return self._link_proxies.urls_for(worker)

    def _await_link_proxies(self) -> None:
        if self._link_proxies is not None:
            self._link_proxies.wait_ready()

    def _close_link_proxies(self, logs_dir: Path | None = None) -> None:
        if self._link_proxies is not None:
            self._link_proxies.close(logs_dir)

    # -- the backend interface ------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        worker = _worker_of(a, b)
        if self._link_proxies is not None:
            self._link_proxies.partition(worker)
            return
        container = self.docker_container(worker)
        network = self._scenario_network(container)
        network.reload()
        if container.id in {c.id for c in network.containers}:
            network.disconnect(container, force=True)
        self._cut_workers().add(worker)

    def heal(self, a: str, b: str) -> None:
        worker = _worker_of(a, b)
        if self._link_proxies is not None:
            self._link_proxies.heal(worker)
            return
        if worker in self._cut_workers():
            container = self.docker_container(worker)
            network = self._scenario_network(container)
            network.reload()
            if container.id not in {c.id for c in network.containers}:
                network.connect(container, aliases=[worker])
                self._follow_host_port(worker, container)
            self._cut_workers().discard(worker)
        if worker in self._delayed_workers():
            self._netem(worker, None)

    def heal_all(self) -> None:
        if self._link_proxies is not None:
            self._link_proxies.heal_all()
            return
        for worker in sorted(self._cut_workers() | self._delayed_workers()):
            with contextlib.suppress(Exception):  # heal what can be healed; teardown removes the rest
                self.heal(GATEWAY, worker)

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        """Each request/answer exchange ``a`` opens to ``b`` takes ``latency_s`` (± ``jitter_s``) longer;
        0 removes it."""
        worker = _worker_of(a, b)
        if latency_s < 0 or jitter_s < 0:
            raise BackendError(f"latency and jitter must be >= 0, got {latency_s} s ± {jitter_s} s")
        if self._link_proxies is not None:
            self._link_proxies.set_latency(worker, a == GATEWAY, latency_s, jitter_s)
            return
        if not (latency_s or jitter_s) and worker not in self._delayed_workers():
            return  # nothing to remove
        self._netem(worker, (latency_s, jitter_s) if latency_s or jitter_s else None)

    # -- internals ------------------------------------------------------------------------------
    def _cut_workers(self) -> set[str]:
        if not hasattr(self, "_link_cut"):
            self._link_cut: set[str] = set()
        return self._link_cut

    def _delayed_workers(self) -> set[str]:
        if not hasattr(self, "_link_delayed"):
            self._link_delayed: set[str] = set()
        return self._link_delayed

    def _follow_host_port(self, worker: str, container: Any, timeout: float = 5.0) -> None:
        """Docker publishes the port again on reconnect, on a new host port: point the backend at it."""
        service = self._service(worker)  # type: ignore[attr-defined]
        key = f"{service.port}/tcp"
        deadline = time.monotonic() + timeout
        while True:
            container.reload()
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(key) or []
            if bindings:
                service.host_port = int(bindings[0]["HostPort"])
                return
            if time.monotonic() > deadline:
                raise BackendError(f"{worker} reconnected, but docker published no host port for {key}")
            time.sleep(0.05)

    def _scenario_network(self, container: Any) -> Any:
        return container.client.networks.get(self.network_name)

    def _netem(self, worker: str, delay: tuple[float, float] | None) -> None:
        """``tc qdisc`` netem on the worker's interface: its packets (to the gateway and back) are delayed;
        ``None`` removes it."""
        container = self.docker_container(worker)
        found = container.exec_run(["sh", "-c", "command -v tc"])
        if found.exit_code != 0:
            raise BackendError(
                f"cannot add latency to {worker} on the docker backend: its image has no `tc` (iproute2) "
                "for netem; start the cluster with ClusterSpec(fault_links=True), whose links go through "
                "fault-proxy containers"
            )
        if delay is None:
            argv = ["tc", "qdisc", "del", "dev", INTERFACE, "root"]
        else:
            latency_ms, jitter_ms = (round(v * 1000) for v in delay)
            # one way only (the worker's egress), so the whole delay is put on it
            argv = ["tc", "qdisc", "replace", "dev", INTERFACE, "root", "netem", "delay", f"{latency_ms}ms"]
            if jitter_ms:
                argv.append(f"{jitter_ms}ms")
        result = container.exec_run(argv, user="root")
        if result.exit_code != 0 and delay is not None:
            raise BackendError(
                f"tc netem in {worker} failed ({result.exit_code}): {result.output.decode(errors='replace')} "
                "(the container needs the NET_ADMIN capability)"
            )
        (self._delayed_workers().add if delay is not None else self._delayed_workers().discard)(worker)


def _worker_of(a: str, b: str) -> str:
    if GATEWAY not in (a, b) or a == b:
        raise BackendError(
            f"no link between {a!r} and {b!r}: faults apply to the gateway<->worker links "
            "(workers never talk to each other)"
        )
    return b if a == GATEWAY else a
