"""Load shedding: an operator tells a worker to refuse inference with 429 (quota exhausted) or 503
(maintenance, overload) for a while, without stopping it.

``POST /worker/shed`` ``{"status": 429 | 503, "reason": "..."}`` starts it, ``{"status": null}`` ends it;
``/worker/status`` shows it under ``shedding``. While it sheds 503 the worker is also not ready. When
the worker holds a join token the call must present it (``Authorization: Bearer``): it steers the
worker, so a stranger may not.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException

from sut.errors import ApiError
from sut.protocol import BadRequest
from sut.token_source import TokenError, TokenSource

SHED_STATUSES = (429, 503)


@dataclass
class Shedding:
    status: int | None = None
    reason: str = ""
    since: float | None = None

    def refuse_if_shedding(self, worker_name: str) -> None:
        if self.status is not None:
            raise ApiError(
                f"worker {worker_name} refuses inference ({self.status}): {self.reason}", self.status
            )

    def set(self, payload: dict[str, Any]) -> None:
        status = payload.get("status")
        if status is None:
            self.status, self.reason, self.since = None, "", None
            return
        if isinstance(status, bool) or status not in SHED_STATUSES:
            raise BadRequest(f"'status' must be one of {list(SHED_STATUSES)} or null, got {status!r}")
        reason = payload.get("reason") or ("quota exhausted" if status == 429 else "under maintenance")
        if not isinstance(reason, str):
            raise BadRequest("'reason' must be a string")
        self.status, self.reason, self.since = int(status), reason[:200], time.time()

    def as_dict(self) -> dict[str, Any] | None:
        if self.status is None:
            return None
        return {"status": self.status, "reason": self.reason, "since": self.since}


def require_join_token(request: Request, source: TokenSource | None) -> None:
    """401 unless the request presents the worker's join token (when it has one)."""
    if source is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        expected = source.read()
    except TokenError:
        raise HTTPException(503, "the worker cannot read its join token") from None
    presented = hashlib.sha256(token.strip().encode()).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented, hashlib.sha256(expected.encode()).digest()
    ):
        raise HTTPException(401, "missing or wrong join token", headers={"WWW-Authenticate": "Bearer"})
