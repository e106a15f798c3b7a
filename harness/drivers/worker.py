"""A direct probe of one worker (not through the gateway): what it holds, what it is doing, what it served.

Used to tell *which* worker answered: the V2 answer does not name it, but each worker counts the
requests it served in its own ``/metrics`` (``sut_requests_total``) and reports the requests it is
running in ``/worker/status``. The test process reaches the worker's own port, never a fault proxy.
"""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness import http_client, trace


class WorkerProbe:
    def __init__(self, name: str, base_url: str, *, timeout: float = 3.0) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def status(self) -> dict[str, Any] | None:
        """``GET /worker/status``; None when the worker does not answer (dead, paused, partitioned)."""
        trace.touch("http", f"GET {self.name} /worker/status")
        try:
            resp = http_client.get(f"{self.base_url}/worker/status", timeout=self.timeout)
        except httpx.HTTPError:
            return None
        return resp.json() if resp.status_code == 200 else None

    def loaded(self) -> set[tuple[str, str]] | None:
        """The (model, version) pairs the worker holds ready right now; None when it does not answer."""
        status = self.status()
        if status is None:
            return None
        return {
            (str(m.get("name")), str(m.get("version")))
            for m in status.get("models", [])
            if m.get("state", "READY") == "READY"
        }

    def in_flight(self) -> int:
        """Inference requests the worker is running right now (0 when it does not answer)."""
        status = self.status()
        if status is None:
            return 0
        total = status.get("in_flight")
        if isinstance(total, int):
            return total
        return sum(int(m.get("in_flight", 0)) for m in status.get("models", []))

    def shed(self, status: int | None, *, join_token: str) -> int:
        """Make the worker refuse every inference with ``status`` (429, 503; None: stop); the HTTP status."""
        trace.touch("http", f"POST {self.name} /worker/shed {status}")
        resp = http_client.post(
            f"{self.base_url}/worker/shed",
            json={"status": status},
            headers={"Authorization": f"Bearer {join_token}"},
            timeout=self.timeout,
        )
        return resp.status_code

    def requests_total(self) -> int | None:
        """Every inference request the worker answered since it started, any model, any status (None: no
        answer): what reached it at all."""
        trace.touch("http", f"GET {self.name} /metrics")
        try:
            resp = http_client.get(f"{self.base_url}/metrics", timeout=self.timeout)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        return sum(
            int(sample.value)
            for family in text_string_to_metric_families(resp.text)
            for sample in family.samples
            if sample.name == "sut_requests_total"
        )

    def served(self, model: str, status: str = "200") -> int | None:
        """Requests for ``model`` the worker answered with ``status`` since it started (None: no answer)."""
        trace.touch("http", f"GET {self.name} /metrics")
        try:
            resp = http_client.get(f"{self.base_url}/metrics", timeout=self.timeout)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        total = 0
        for family in text_string_to_metric_families(resp.text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == "sut_requests_total"
                    and labels.get("model") == model
                    and str(labels.get("status")) == status
                ):
                    total += int(sample.value)
        return total

    def served_by_version(self, model: str) -> dict[str, int] | None:
        """Requests for ``model`` the worker answered since it started, per version, any status (None: no
        answer)."""
        trace.touch("http", f"GET {self.name} /metrics")
        try:
            resp = http_client.get(f"{self.base_url}/metrics", timeout=self.timeout)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        counts: dict[str, int] = {}
        for family in text_string_to_metric_families(resp.text):
            for sample in family.samples:
                if sample.name == "sut_requests_total" and sample.labels.get("model") == model:
                    version = str(sample.labels.get("version"))
                    counts[version] = counts.get(version, 0) + int(sample.value)
        return counts
