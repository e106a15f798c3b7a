"""Partitions between the gateway and a worker on the docker backend: the worker leaves the network.

``partition("gateway", "worker-2")`` disconnects worker-2's container from the scenario's network
(``docker network disconnect``): the gateway can no longer resolve or reach it, its heartbeats no longer
reach the gateway, and neither process is told. ``heal`` connects it again under its alias, so the
gateway finds it by name as before. Only gateway<->worker links exist in this cluster.

Differences from the local backend's in-path proxy, stated so that nobody is surprised:

- a disconnected worker is unreachable *at once* (name resolution fails, connections are refused),
  where the proxy blackholes (connections hang until the deadline): the gateway learns of it from
  its first failed call as well as from the missed heartbeats;
- the test process cannot reach the disconnected worker's published port either, and docker publishes
  it on a new host port when the worker reconnects (the backend's record is updated to follow it);
- a worker restarted while cut off comes back connected (a new container joins the network);
- latency needs ``tc netem`` inside the container and the NET_ADMIN capability; the reference images
  have no ``tc`` (checked: no ``tc``, ``ip`` or ``iptables`` in them), so ``set_latency`` raises a
  :class:`BackendError` that says so unless both are present. (Also checked: the host's ``tc`` run in a
  helper container sharing the worker's network namespace, with NET_ADMIN, gets "Specified qdisc kind
  is unknown": this engine's kernel has no ``sch_netem``, so netem cannot work here at all.)

Wiring: ``class DockerBackend(DockerLinkFaults, ClusterBackend)``; the mixin uses the backend's
``docker_container(name)``, ``network_name`` and its service records (``_service(name).host_port``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from harness.backends.base import BackendError

GATEWAY = "gateway"
INTERFACE = "eth0"


class DockerLinkFaults:
    """Mixin for the docker backend: partition / heal / latency between the gateway and a worker."""

    # provided by the docker backend (not defined here: the mixin may come first in the MRO)
    network_name: str
    docker_container: Callable[[str], Any]

    # -- the backend interface ------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        worker = _worker_of(a, b)
        container = self.docker_container(worker)
        network = self._scenario_network(container)
        network.reload()
        if container.id in {c.id for c in network.containers}:
            network.disconnect(container, force=True)
        self._cut_workers().add(worker)

    def heal(self, a: str, b: str) -> None:
        worker = _worker_of(a, b)
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
        for worker in sorted(self._cut_workers() | self._delayed_workers()):
            with contextlib.suppress(Exception):  # heal what can be healed; teardown removes the rest
                self.heal(GATEWAY, worker)

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        worker = _worker_of(a, b)
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
                "for netem; use the local backend, whose links go through a fault proxy"
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
