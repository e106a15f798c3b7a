"""The background-call driver: an answer, an error or an abandoned call, and the wait the trace sees."""

from __future__ import annotations

import threading

from harness import trace
from harness.drivers.background import BackgroundCall


def test_the_answer_is_handled_before_the_call_counts_as_done() -> None:
    release = threading.Event()
    handled: list[str] = []
    sent = BackgroundCall.start("a call", lambda: release.wait(5) and "answer", on_answer=handled.append)
    assert not sent.wait(0.05) and sent.answered_at is None  # still running
    release.set()
    with trace.step("Then", "the call is judged", "x.feature:3", "judge") as record:
        assert sent.wait(5)
    assert (sent.answer, handled, sent.error) == ("answer", ["answer"], None)
    assert sent.answered_at is not None and sent.answered_at >= sent.requested_at
    assert record.touches == 1 and record.kinds == ["http"]  # waiting for a service's answer


def test_an_error_is_kept_for_the_step_that_judges_the_call() -> None:
    def broken() -> str:
        raise ConnectionError("refused")

    sent = BackgroundCall.start("a call", broken, on_answer=lambda _: None)
    assert sent.wait(5)
    assert isinstance(sent.error, ConnectionError) and sent.answer is None and sent.answered_at is None


def test_an_abandoned_call_is_not_handled() -> None:
    release = threading.Event()
    handled: list[str] = []
    sent = BackgroundCall.start("a call", lambda: release.wait(5) and "late", on_answer=handled.append)
    sent.abandon(0.01)  # the scenario ended first
    release.set()
    assert sent.done.wait(5)
    assert sent.answer == "late" and handled == []
