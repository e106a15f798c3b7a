"""An open-loop paced sender: ``count`` requests evenly spread over ``seconds``, whatever the answers take.

Request ``i`` is due at ``start + i * seconds / count``; a pool of threads sends each when it is due, so
a slow answer does not delay the next request (no coordinated omission: a closed-loop generator would
send less while the service is slow and hide it). How late the sender itself was is reported, so a
step can refuse a run where the test process, not the service, could not keep the pace.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from harness.drivers.v2 import V2Client
from harness.load.sender import InferSender, Sent


@dataclass(frozen=True)
class PacedRun:
    sent: list[Sent]
    seconds: float  # the schedule's length
    elapsed_s: float  # from the first send to the last answer
    max_lag_s: float  # the latest a request left after its due time


def send_paced(
    v2: V2Client, model: str, count: int, seconds: float, *, threads: int = 32, timeout: float = 10.0
) -> PacedRun:
    if count < 1 or seconds <= 0:
        raise ValueError(f"need count >= 1 and seconds > 0 (got {count}, {seconds})")
    interval = seconds / count
    sender = InferSender(v2, connections=threads, timeout=timeout)
    lags: list[float] = []
    run_id = uuid.uuid4().hex[:6]

    def one(index: int, due: float) -> Sent:
        lags.append(time.perf_counter() - due)  # list.append is atomic
        return sender.send(model, f"paced-{run_id}-{index}", seed=index)

    futures: list[Future[Sent]] = []
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="paced") as pool:
            start = time.perf_counter() + 0.05
            for index in range(count):
                due = start + index * interval
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                futures.append(pool.submit(one, index, due))
            sent = [f.result() for f in futures]
        elapsed = time.perf_counter() - start
    finally:
        sender.close()
    return PacedRun(sent, seconds, elapsed, max(lags) if lags else 0.0)
