"""Partitions and latency between the gateway and each worker on the local backend.

Every worker link gets two :class:`~harness.faults.proxy.FaultProxy` instances, made when the worker
is first started (through ``LocalBackend.worker_links``) and kept across its restarts:

- ``to_worker``: the worker advertises the proxy's address, so every connection the gateway opens to
  the worker (inference, load/unload) crosses it;
- ``to_gateway``: the worker is given the proxy's address as ``--gateway``, so its registration and
  heartbeats cross it.

Neither process is told about a fault: a partition blackholes both proxies (connections open, data
held, as when packets are dropped), latency delays the bytes. Only gateway<->worker links exist in
this cluster (workers never talk to each other); the test process talks to every service directly.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from harness.backends.base import BackendError
from harness.faults.proxy import FaultProxy

HOST = "127.0.0.1"
GATEWAY = "gateway"


@dataclass
class WorkerLinkProxies:
    worker: str
    to_worker: FaultProxy  # connections the gateway opens to the worker
    to_gateway: FaultProxy  # connections the worker opens to the gateway

    def both(self) -> tuple[FaultProxy, FaultProxy]:
        return self.to_worker, self.to_gateway


class FaultLinks:
    """The fault proxies of one cluster, by worker name."""

    def __init__(self, gateway_port: int) -> None:
        self.gateway_port = gateway_port
        self._links: dict[str, WorkerLinkProxies] = {}

    def urls_for(self, worker: str, worker_port: int) -> tuple[str, str]:
        """(advertise URL, gateway URL) for a worker; proxies are made once per worker name."""
        link = self._links.get(worker)
        if link is None or link.to_worker.upstream != (HOST, worker_port):
            if link is not None:  # same name on another port: not expected, but never leave a proxy open
                self._close(link)
            link = WorkerLinkProxies(
                worker,
                FaultProxy(HOST, worker_port, name=f"gateway->{worker}").start(),
                FaultProxy(HOST, self.gateway_port, name=f"{worker}->gateway").start(),
            )
            self._links[worker] = link
        return link.to_worker.url, link.to_gateway.url

    # -- faults ------------------------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        """Drop everything between ``a`` and ``b``, both ways (open connections stall, new ones hang)."""
        for proxy in self._link(a, b).both():
            proxy.set_mode("blackhole")

    def heal(self, a: str, b: str) -> None:
        """A clean link again: data held by a partition flows, no latency."""
        for proxy in self._link(a, b).both():
            proxy.heal()

    def heal_all(self) -> None:
        for link in self._links.values():
            for proxy in link.both():
                proxy.heal()

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        """Delay the connections ``a`` opens to ``b`` so that each request/answer exchange takes
        ``latency_s`` (± ``jitter_s``) longer: half on the way there, half on the way back (each chunk
        of bytes is delayed, as by Toxiproxy's latency toxic). 0 removes it."""
        if latency_s < 0 or jitter_s < 0:
            raise BackendError(f"latency and jitter must be >= 0, got {latency_s} s ± {jitter_s} s")
        link = self._link(a, b)
        proxy = link.to_worker if a == GATEWAY else link.to_gateway
        proxy.set_latency(latency_s / 2, jitter_s / 2)

    def describe(self) -> dict[str, dict[str, object]]:
        """Each proxy's current faults (for assertion messages and teardown checks)."""
        out: dict[str, dict[str, object]] = {}
        for link in self._links.values():
            for proxy in link.both():
                f = proxy.faults
                out[proxy.name] = {"mode": f.mode, "latency_s": f.latency_s, "jitter_s": f.jitter_s}
        return out

    def clean(self) -> bool:
        """True when no fault is applied on any link."""
        return all(
            f["mode"] == "pass" and not f["latency_s"] and not f["jitter_s"] for f in self.describe().values()
        )

    def close(self) -> None:
        """Close every proxy (teardown); idempotent, never raises."""
        for link in self._links.values():
            self._close(link)
        self._links.clear()

    # -- internals ---------------------------------------------------------------------------------
    def _link(self, a: str, b: str) -> WorkerLinkProxies:
        if GATEWAY not in (a, b) or a == b:
            raise BackendError(
                f"no link between {a!r} and {b!r}: faults apply to the gateway<->worker links "
                f"(workers never talk to each other); links: {sorted(self._links)}"
            )
        worker = b if a == GATEWAY else a
        link = self._links.get(worker)
        if link is None:
            raise BackendError(
                f"{worker!r} has no fault-injectable link: start the cluster with ClusterSpec.fault_links "
                f"(workers with links: {sorted(self._links)})"
            )
        return link

    @staticmethod
    def _close(link: WorkerLinkProxies) -> None:
        for proxy in link.both():
            with contextlib.suppress(Exception):  # teardown goes on
                proxy.close()
