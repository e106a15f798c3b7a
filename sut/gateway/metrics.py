"""Prometheus metrics of the gateway, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sut.gateway.recent import RecentAnswers
from sut.gateway.registry import WorkerRegistry

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sut_requests_total",
            "Inference requests answered by the gateway",
            ["model", "version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sut_request_latency_seconds",
            "Inference latency seen by the gateway (including the worker)",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.loaded = Gauge(
            "sut_loaded_versions",
            "Workers holding each model version",
            ["model", "version"],
            registry=self.registry,
        )
        self.memory = Gauge(
            "sut_memory_bytes",
            "Artifact bytes held across the workers, per model version (catalog size x holders)",
            ["model", "version"],
            registry=self.registry,
        )
        self.recent = RecentAnswers()  # the same answers, raw and recent (canary and alert judgments)
        self.workers = Gauge("sut_workers", "Registered workers by state", ["state"], registry=self.registry)
        self.retries = Counter(
            "sut_gateway_retries_total",
            "Requests retried on another worker",
            ["model"],
            registry=self.registry,
        )

        self.auth_refused = Counter(
            "sut_auth_refused_total",
            "Requests refused for a missing, wrong or misused credential (api: admin | worker)",
            ["api", "reason"],
            registry=self.registry,
        )

    def observe(self, model: str, version: str, status: int, seconds: float) -> None:
        self.requests.labels(model, version, str(status)).inc()
        self.latency.labels(model, version).observe(seconds)
        self.recent.add(model, version, status, seconds)

    def render(self, workers: WorkerRegistry, sizes: dict[tuple[str, str], int]) -> bytes:
        """Refresh the gauges from the registry (and the catalog's artifact sizes), then expose everything."""
        for state, n in workers.counts_by_state().items():
            self.workers.labels(state).set(n)
        self.loaded.clear()
        self.memory.clear()
        for (model, version), n in workers.loaded_versions().items():
            self.loaded.labels(model, version).set(n)
            if (model, version) in sizes:
                self.memory.labels(model, version).set(n * sizes[(model, version)])
        return generate_latest(self.registry)
