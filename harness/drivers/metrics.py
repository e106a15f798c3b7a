"""A target's own Prometheus counters: what the server says it answered, per status (or version).

Lets a step compare what the test process saw with what the service counted (a request the client
recorded but the server never answered, or answered twice, shows up as a difference). The metric and
label names come from the target (:class:`harness.targets.base.MetricsSpec`): every server names them
its own way.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from harness import http_client, trace
from harness.targets.base import MetricsSpec


def requests_by(
    spec: MetricsSpec, model: str, *labels: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> Counter[tuple[str, ...]]:
    """The request counter of ``model`` summed by the values of ``labels`` ("" where a sample lacks one).
    A counter without a model label counts every route that contains ``spec.path_contains``."""
    trace.touch("http", f"GET {spec.url}")
    resp = http_client.get(spec.url, headers=headers, timeout=timeout)
    resp.raise_for_status()
    names = {spec.request_counter, f"{spec.request_counter}_total"}
    counts: Counter[tuple[str, ...]] = Counter()
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            found = sample.labels
            if sample.name not in names:
                continue
            if spec.model_label is not None and found.get(spec.model_label) != model:
                continue
            route = str(found.get(spec.path_label, "")) if spec.path_label else ""
            if spec.path_contains is not None and spec.path_contains not in route:
                continue
            counts[tuple(str(found.get(label, "")) for label in labels)] += int(sample.value)
    return counts


def requests_by_status(
    spec: MetricsSpec, model: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> Counter[str]:
    """The request counter of ``model`` summed over versions, by status ("200", "504", ...; "" when the
    server does not label statuses)."""
    label = spec.status_label or "\0"  # a label no sample has: every count under ""
    by = requests_by(spec, model, label, headers=headers, timeout=timeout)
    return Counter({status: n for (status,), n in by.items()})
