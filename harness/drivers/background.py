"""A call to a service sent from a thread while the scenario goes on, and the wait for its answer.

A step starts a swap, a rollback or a long inference and returns at once, so that the next steps happen
while it runs; a later step waits for the answer and judges it. The wait is recorded in the step trace as
an exchange with a service: the waiting step receives what the service answered meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from harness import trace

T = TypeVar("T")


@dataclass
class BackgroundCall(Generic[T]):
    """``call()`` running in a daemon thread: when it was sent and answered, its answer or its error."""

    what: str  # for the trace and messages, e.g. "the swap" or "POST /v2/models/slow/infer"
    requested_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    answer: T | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)  # answered (or broken), and handled
    abandoned: threading.Event = field(default_factory=threading.Event)  # the scenario ended first

    @classmethod
    def start(
        cls, what: str, call: Callable[[], T], *, on_answer: Callable[[T], None] | None = None
    ) -> BackgroundCall[T]:
        """Send ``call()`` from a thread now; ``on_answer`` runs in that thread on its answer, unless the
        call was abandoned first (``done`` is set after it)."""
        running: BackgroundCall[T] = cls(what)

        def body() -> None:
            try:
                running.answer = call()
                running.answered_at = time.time()
                if on_answer is not None and not running.abandoned.is_set():
                    on_answer(running.answer)
            except BaseException as exc:  # reported by the step that judges the call
                running.error = exc
            finally:
                running.done.set()

        threading.Thread(target=body, name=f"background {what}", daemon=True).start()
        return running

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the answer; whether it came (or the call broke)."""
        trace.touch("http", f"await the answer to {self.what}")
        return self.done.wait(max(0.0, timeout))

    def abandon(self, grace: float) -> None:
        """At teardown: a call still running gets ``grace`` seconds; the services' teardown then ends it."""
        self.abandoned.set()
        self.done.wait(grace)
