"""Inference traffic with varied inputs, every answer kept with the input that produced it.

Routing scenarios judge *who answered and what it computed*: each request carries its own input rows
(standard normals, like ``fixtures.data.baseline``, from a seeded generator per client), and each answer
keeps them, with the version the answer names (the body's ``model_version``, else the gateway's
``x-model-version`` header: error answers name their version that way), its outputs and its timing.
:mod:`harness.oracle` then checks the outputs against the model files. Every answer is also an
:class:`~harness.observations.Observation` of the World, so the window/SLO steps see it too.

Clients are threads of the test process, each sending one request after the other (closed loop) with an
optional pause; ``versions`` makes every request name a version explicitly (round robin over the list).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from harness import trace, waiting
from harness.observations import Observation, Observations

VERSION_HEADER = "x-model-version"
N_FEATURES = 4


@dataclass(frozen=True)
class Routed:
    """One request and its answer."""

    started: float  # wall clock
    latency_s: float
    status: int  # 0 = no HTTP answer
    version: str | None  # the version the answer names (body, else header)
    body_version: str | None
    header_version: str | None
    request_id: str
    named: str | None  # the version the request asked for in its path (None: the model's routing decides)
    rows: np.ndarray  # [N, 4] FP32 input
    outputs: list[float] | None  # the first output's data, for a 200
    error: str | None

    @property
    def ended(self) -> float:
        return self.started + self.latency_s

    @property
    def ok(self) -> bool:
        return self.status == 200


class RoutedTraffic:
    def __init__(
        self,
        base_url: str,
        observations: Observations,
        *,
        model: str,
        clients: int = 8,
        seed: int = 0,
        think_s: float = 0.0,
        timeout: float = 10.0,
    ) -> None:
        self.model = model
        self.clients = clients
        self.seed = seed
        self.think_s = think_s
        self.observations = observations
        limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, limits=limits, trust_env=False
        )
        self._lock = threading.Lock()
        self._answers: list[Routed] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._runs = itertools.count()

    # -- running ----------------------------------------------------------------------------------
    def start(self, versions: list[str] | None = None) -> None:
        """Every client sends until :meth:`stop`."""
        if self.running:
            raise RuntimeError("this traffic is already running")
        self._stop.clear()
        run = next(self._runs)
        self._threads = [
            threading.Thread(
                target=self._client, args=(run, i, None, versions), daemon=True, name=f"routed-{i}"
            )
            for i in range(self.clients)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        trace.touch("load", "stop routed traffic")
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30.0)
        self._threads = []

    def run(self, count: int, versions: list[str] | None = None) -> list[Routed]:
        """Send ``count`` requests spread over the clients; return their answers."""
        if self.running:
            raise RuntimeError("stop the running traffic before a counted run")
        self._stop.clear()
        run = next(self._runs)
        before = len(self._answers)
        shares = [count // self.clients + (1 if i < count % self.clients else 0) for i in range(self.clients)]
        threads = [
            threading.Thread(target=self._client, args=(run, i, n, versions), daemon=True)
            for i, n in enumerate(shares)
            if n
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._lock:
            return self._answers[before:]

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def answers(self, start: float | None = None, end: float | None = None) -> list[Routed]:
        """Answers of requests started within ``[start, end]`` (wall clock), in start order."""
        trace.touch("load", "routed traffic answers")  # what the services answered (like LoadRun.samples)
        with self._lock:
            picked = [
                a
                for a in self._answers
                if (start is None or a.started >= start) and (end is None or a.started <= end)
            ]
        return sorted(picked, key=lambda a: a.started)

    def wait_for(self, count: int, timeout: float) -> int:
        """Until ``count`` answers have arrived in total (or ``timeout``); how many there are."""
        return waiting.poll(lambda: len(self._answers), lambda n: n >= count, timeout=timeout, interval=0.05)

    def close(self) -> None:
        self.stop()
        self._http.close()

    # -- one client -------------------------------------------------------------------------------
    def _client(self, run: int, index: int, count: int | None, versions: list[str] | None) -> None:
        rng = np.random.default_rng([self.seed, run, index])
        sent = 0
        cycle = itertools.cycle(versions) if versions else None
        while not self._stop.is_set() and (count is None or sent < count):
            named = next(cycle) if cycle is not None else None
            self._one(rng.normal(size=(1, N_FEATURES)).astype(np.float32), named)
            sent += 1
            if self.think_s:
                self._stop.wait(self.think_s)

    def _one(self, rows: np.ndarray, named: str | None) -> None:
        request_id = uuid.uuid4().hex[:16]
        path = f"/v2/models/{self.model}" + (f"/versions/{named}" if named else "") + "/infer"
        body = {
            "id": request_id,
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.ravel().tolist(),
                }
            ],
        }
        trace.touch("http", f"POST {path}")
        started, t0 = time.time(), time.perf_counter()
        status, payload, header, error = 0, None, None, None
        try:
            resp = self._http.post(path, json=body)
            status, header = resp.status_code, resp.headers.get(VERSION_HEADER)
            try:
                payload = resp.json()
            except ValueError:
                payload = resp.text
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - t0
        body_version = None
        outputs = None
        if isinstance(payload, dict):
            if payload.get("model_version") is not None:
                body_version = str(payload["model_version"])
            if status == 200:
                try:
                    outputs = [float(v) for v in payload["outputs"][0]["data"]]
                except (KeyError, IndexError, TypeError, ValueError):
                    error = f"answer without outputs: {str(payload)[:200]}"
            elif status >= 400:
                error = str(payload.get("error", payload))[:300]
        elif status >= 400:
            error = str(payload)[:300]
        answer = Routed(
            started=started,
            latency_s=latency,
            status=status,
            version=body_version or header,
            body_version=body_version,
            header_version=header,
            request_id=request_id,
            named=named,
            rows=rows,
            outputs=outputs,
            error=error,
        )
        with self._lock:
            self._answers.append(answer)
        self.observations.add(
            Observation(
                started=started,
                latency_s=latency,
                status=status,
                model_version=answer.version,
                error=error,
                source="driver",
                request_id=request_id,
                target=f"POST {path}",
            )
        )


def describe(answers: list[Routed], limit: int = 5) -> str:
    shown = [
        f"{a.request_id}: {a.status or 'no answer'} from {a.version!r}" + (f" ({a.error})" if a.error else "")
        for a in answers[:limit]
    ]
    more = len(answers) - limit
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def by_version(answers: list[Routed]) -> dict[str, list[Routed]]:
    out: dict[str, list[Routed]] = {}
    for a in answers:
        out.setdefault(str(a.version), []).append(a)
    return out


def summary(answers: list[Routed]) -> dict[str, Any]:
    """Count, 5xx, p50 and p99 (ms) of a list of answers, for printing."""
    from harness.slo import percentile

    lat = [a.latency_s for a in answers if a.ok]
    p50 = percentile(lat, 0.5, min_samples=1) * 1000 if lat else None
    p99 = percentile(lat, 0.99, min_samples=1) * 1000 if lat else None
    return {
        "requests": len(answers),
        "server_errors": sum(1 for a in answers if a.status == 0 or a.status >= 500),
        "p50_ms": None if p50 is None else round(p50, 1),
        "p99_ms": None if p99 is None else round(p99, 1),
    }
