"""Partitions and latency on the links between two services of the local backend.

A service whose :class:`~harness.backends.base.ServiceSpec` names ``links`` gets, for each peer, two
:class:`~harness.faults.proxy.FaultProxy` instances, made when it is first launched and kept across its
restarts (the ports stay the same):

- ``service -> peer``: the service is given the proxy's address for the peer (``Placement.url_of``), so
  every connection it opens to the peer crosses it (a worker's registration and heartbeats);
- ``peer -> service``: the service advertises the proxy's address (``Placement.reached_by``), so every
  connection the peer opens to it crosses it (the gateway's inference calls to a worker).

Neither process is told about a fault: a partition blackholes both proxies (connections open, data held,
as when packets are dropped), latency delays the bytes. The test process talks to every service directly.
"""

from __future__ import annotations

import contextlib

from harness.backends.base import BackendError
from harness.faults.proxy import FaultProxy
from harness.processes import free_port

HOST = "127.0.0.1"


class FaultLinks:
    """The fault proxies of one scenario, by (from, to) service names."""

    def __init__(self) -> None:
        self._proxies: dict[tuple[str, str], FaultProxy] = {}

    def proxy(self, source: str, target: str, target_port: int) -> str:
        """The URL at which ``source`` reaches ``target`` (listening on ``target_port``) through a proxy;
        made once per pair and reused (a restarted service keeps its port)."""
        key = (source, target)
        proxy = self._proxies.get(key)
        if proxy is None or proxy.upstream != (HOST, target_port):
            if proxy is not None:  # same names on another port: never leave a proxy open
                self._close(proxy)
            # a port of its own from free_port: the kernel could otherwise hand the proxy a port just given
            # to a service that has not bound it yet
            listen = free_port(HOST)
            proxy = FaultProxy(HOST, target_port, listen_port=listen, name=f"{source}->{target}").start()
            self._proxies[key] = proxy
        return proxy.url

    def has(self, source: str, target: str) -> bool:
        return (source, target) in self._proxies

    # -- faults ------------------------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        """Drop everything between ``a`` and ``b``, both ways (open connections stall, new ones hang)."""
        for proxy in self._pair(a, b):
            proxy.set_mode("blackhole")

    def heal(self, a: str, b: str) -> None:
        """A clean link again: data held by a partition flows, no latency."""
        for proxy in self._pair(a, b):
            proxy.heal()

    def heal_all(self) -> None:
        for proxy in self._proxies.values():
            proxy.heal()

    def set_latency(self, a: str, b: str, latency_s: float, jitter_s: float = 0.0) -> None:
        """Delay the connections ``a`` opens to ``b`` so that each request/answer exchange takes
        ``latency_s`` (± ``jitter_s``) longer: half on the way there, half on the way back (each chunk of
        bytes is delayed, as by Toxiproxy's latency toxic). 0 removes it."""
        if latency_s < 0 or jitter_s < 0:
            raise BackendError(f"latency and jitter must be >= 0, got {latency_s} s ± {jitter_s} s")
        self._pair(a, b)  # a clear error when there is no link at all
        proxy = self._proxies.get((a, b))
        if proxy is None:
            raise BackendError(f"no faultable link from {a} to {b} (only from {b} to {a})")
        proxy.set_latency(latency_s / 2, jitter_s / 2)

    def describe(self) -> dict[str, dict[str, object]]:
        """Each proxy's current faults (for assertion messages and teardown checks)."""
        out: dict[str, dict[str, object]] = {}
        for proxy in self._proxies.values():
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
        for proxy in self._proxies.values():
            self._close(proxy)
        self._proxies.clear()

    # -- internals ---------------------------------------------------------------------------------
    def _pair(self, a: str, b: str) -> list[FaultProxy]:
        found = [self._proxies[k] for k in ((a, b), (b, a)) if k in self._proxies]
        if not found:
            linked = sorted({f"{x}<->{y}" for x, y in self._proxies})
            raise BackendError(
                f"no fault-injectable link between {a!r} and {b!r} (links: {linked or 'none'}); "
                "the cluster must be started with links that accept network faults"
            )
        return found

    @staticmethod
    def _close(proxy: FaultProxy) -> None:
        with contextlib.suppress(Exception):  # teardown goes on
            proxy.close()
