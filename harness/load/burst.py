"""A burst: ``n`` inference requests released at the same instant, each with its own id.

One thread per request, all waiting on a barrier, so the gateway really has them all in flight at once
(Locust's users would ramp up and reuse connections one request at a time).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from harness.drivers.v2 import V2Client
from harness.load.sender import InferSender, Sent

BARRIER_TIMEOUT_S = 60.0


def send_burst(v2: V2Client, model: str, request_ids: list[str], *, timeout: float = 30.0) -> list[Sent]:
    """Send one request per id, all at once; the answers in the order of ``request_ids``."""
    if len(set(request_ids)) != len(request_ids):
        raise ValueError("a burst needs distinct request ids")
    count = len(request_ids)
    sender = InferSender(v2, connections=count, timeout=timeout)
    barrier = threading.Barrier(count)

    def one(request_id: str) -> Sent:
        barrier.wait(BARRIER_TIMEOUT_S)  # every thread is up: release them together
        return sender.send(model, request_id, seed=request_ids.index(request_id))

    try:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="burst") as pool:
            return list(pool.map(one, request_ids))
    finally:
        sender.close()
