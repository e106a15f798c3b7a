"""Prometheus metrics of one worker app, in its own registry (several apps can share a process)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sut.worker.model_store import ModelStore

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StoreCollector(Collector):
    """Loaded versions and their memory, read from the store at scrape time (so unloads vanish)."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded = GaugeMetricFamily(
            "sut_loaded_versions", "1 per model version loaded", labels=["model", "version"]
        )
        memory = GaugeMetricFamily(
            "sut_memory_bytes",
            "Memory held per loaded model version (artifact size)",
            labels=["model", "version"],
        )
        for lv in self.store.all_in_memory():
            if not lv.retired:
                loaded.add_metric([lv.model, lv.version], 1)
            memory.add_metric([lv.model, lv.version], lv.size_bytes)
        budget = GaugeMetricFamily("sut_memory_budget_bytes", "Memory budget (0 = unlimited)")
        budget.add_metric([], self.store.memory_budget)
        yield from (loaded, memory, budget)


class WorkerMetrics:
    def __init__(self, store: ModelStore) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sut_requests",
            "Inference requests by outcome",
            ["model", "version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sut_request_latency_seconds",
            "Inference request latency",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))

    def observe(self, model: str, version: str, status: int, seconds: float) -> None:
        self.requests.labels(model, version, str(status)).inc()
        self.latency.labels(model, version).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
