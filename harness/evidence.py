"""What a Then step judges when it sends nothing itself: answers real services gave earlier.

The When step that sent the requests kept their answers; the Then step that judges them reaches no
service, so the run-time trace would call it hollow. :func:`judged` records it as judging evidence, and
only answers of real exchanges count (a driver's :class:`Answer` or a recorded :class:`Observation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness import trace
from harness.drivers.v2 import Answer
from harness.observations import Observation


def judged(evidence: Sequence[Any], what: str) -> None:
    """Record that the current step judges ``evidence``; fails when none of it is a real answer."""
    real = [e for e in evidence if isinstance(e, Answer | Observation)]
    assert real, f"no recorded answers to judge ({what})"
    trace.touch("evidence", f"{len(real)} {what}")
