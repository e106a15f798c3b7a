"""A run's figures in the Prometheus text format (a node-exporter textfile), optionally pushed.

Every series carries the labels ``feature``, ``scenario``, ``target`` and ``profile``, so runs of
different scenarios can share a textfile directory or a Pushgateway group without clashing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from harness.observations import Observation
from harness.slo import LatencySummary
from harness.slo_check import SloVerdict

LABELS = ("feature", "scenario", "target", "profile")
PREFIX = "servingbdd_load"


def run_registry(
    observations: Sequence[Observation],
    labels: Mapping[str, str],
    verdict: SloVerdict | None = None,
) -> CollectorRegistry:
    """The run's figures as gauges: requests by status, latency quantiles (only those not refused),
    throughput, error ratio, duration, and each SLO check (measured, bound, passed)."""
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; the labels are {list(LABELS)}")
    values = [str(labels.get(name, "")) for name in LABELS]
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, [*LABELS, *extra], registry=registry)

    requests = gauge("requests", "Requests sent in the run, by HTTP status (0 = no answer)", ("status",))
    for status in sorted({o.status for o in observations}):
        requests.labels(*values, str(status)).set(sum(1 for o in observations if o.status == status))
    summary = LatencySummary.of(observations, ok_only=True)
    latency = gauge("latency_seconds", "Latency of the 2xx answers, nearest-rank quantile", ("quantile",))
    for name, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"), ("max", "1")):
        value = getattr(summary, name)
        if value is not None:  # a refused percentile is absent, never a guess
            latency.labels(*values, q).set(value)
    if observations:
        start = min(o.started for o in observations)
        duration = max(o.ended for o in observations) - start
        gauge("duration_seconds", "From the first request sent to the last answer").labels(*values).set(
            duration
        )
        gauge("throughput_rps", "Requests per second over the run").labels(*values).set(
            len(observations) / duration if duration > 0 else 0.0
        )
        errors = sum(1 for o in observations if not o.ok)
        gauge("error_ratio", "Share of requests not answered 2xx").labels(*values).set(
            errors / len(observations)
        )
        gauge("start_timestamp_seconds", "Wall-clock start of the run").labels(*values).set(start)
    if verdict is not None:
        extra = ("environment", "check")
        passed = gauge("slo_passed", "1 if the SLO check passed, 0 if it failed or was refused", extra)
        bound = gauge("slo_bound", "The SLO bound (seconds for latency, a ratio for errors)", extra)
        measured = gauge("slo_measured", "What the run measured for the check", extra)
        for check in verdict.checks:
            keys = (*values, verdict.environment, check.name)
            passed.labels(*keys).set(1 if check.passed else 0)
            scale = 1.0 if check.name == "error_rate" else 0.001  # ms -> s for latency
            bound.labels(*keys).set(check.bound * scale)
            if check.measured is not None:
                measured.labels(*keys).set(check.measured * scale)
    return registry


def write_textfile(path: str | Path, registry: CollectorRegistry) -> Path:
    """Write atomically (prometheus_client writes a temp file and renames it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path


def push(
    gateway_url: str, registry: CollectorRegistry, labels: Mapping[str, str], job: str = "servingbdd"
) -> None:
    """PUT the run's group to a Pushgateway (grouping key = the run's labels)."""
    grouping = {name: str(labels.get(name, "")) for name in LABELS}  # the same values as on the series
    push_to_gateway(gateway_url, job=job, registry=registry, grouping_key=grouping, timeout=10)
