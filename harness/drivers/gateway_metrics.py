"""The gateway's own counters (``GET /metrics``): what the gateway says it answered, per status.

Lets a step compare what the test process saw with what the service counted (a request the client
recorded but the gateway never answered, or answered twice, shows up as a difference).
"""

from __future__ import annotations

from collections import Counter

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness import trace


def requests_by_status(gateway_url: str, model: str, *, timeout: float = 5.0) -> Counter[str]:
    """``sut_requests_total`` of ``model`` summed over versions, by HTTP status ("200", "504", ...)."""
    trace.touch("http", "GET /metrics")
    resp = httpx.get(f"{gateway_url.rstrip('/')}/metrics", timeout=timeout, trust_env=False)
    resp.raise_for_status()
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if sample.name == "sut_requests_total" and sample.labels.get("model") == model:
                counts[str(sample.labels.get("status"))] += int(sample.value)
    return counts


def auth_refusals(gateway_url: str, *, timeout: float = 5.0) -> Counter[tuple[str, str]]:
    """``sut_auth_refused_total`` by (api, reason): the refusals the gateway counted."""
    trace.touch("http", "GET /metrics")
    resp = httpx.get(f"{gateway_url.rstrip('/')}/metrics", timeout=timeout, trust_env=False)
    resp.raise_for_status()
    counts: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if sample.name == "sut_auth_refused_total":
                counts[(str(sample.labels.get("api")), str(sample.labels.get("reason")))] += int(sample.value)
    return counts
