"""Who may call what on the gateway: the admin token, the workers' join token, each worker's own token.

* Admin API: ``Authorization: Bearer <admin token>``.
* Worker registry (register, heartbeat, deregister): ``Authorization: Bearer <join token>``; heartbeat
  and deregistration also ``X-Worker-Token: <the token the registration answer gave>``, so that a worker
  may only heartbeat or deregister itself.
* 401: no credential, or one the gateway does not know; 403: a credential it knows, but not for this
  (the other kind of token, another worker's entry). Every refusal is logged, counted in
  ``sut_auth_refused_total{api,reason}`` and audited (``auth_refused``; at most ``AUDIT_BURST`` entries
  per ``AUDIT_WINDOW_S``, the rest counted in one ``auth_refused_suppressed`` entry).

Tokens are compared as SHA-256 digests with ``hmac.compare_digest`` (constant time, whatever their
length) and never logged, audited or echoed. The join token comes from a file the gateway re-reads on
change: rewriting it rotates the token, and the previous one stays accepted for the stated overlap.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.exceptions import HTTPException

from sut.token_source import TokenError, TokenSource

if TYPE_CHECKING:
    from sut.gateway.app import Gateway
    from sut.gateway.registry import Worker

log = logging.getLogger("sut.gateway.auth")

WORKER_TOKEN_HEADER = "x-worker-token"
AUDIT_BURST = 20
AUDIT_WINDOW_S = 10.0

# reason codes: the metric's label and the audit entry's "reason"
MISSING = "missing_token"
WRONG = "wrong_token"
WRONG_KIND = "wrong_kind"
NOT_OWNER = "not_owner"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_NOTHING = bytes(hashlib.sha256().digest_size)


def same(presented: bytes, expected: bytes | None) -> bool:
    """Constant-time equality of two digests (None never matches, in the same time)."""
    match = hmac.compare_digest(presented, expected if expected is not None else _NOTHING)
    return match and expected is not None


@dataclass(frozen=True)
class Rotation:
    at: float  # wall clock
    previous_valid_until: float  # wall clock
    rotations: int


class JoinTokens:
    """The current join token and, for ``overlap_s`` after a rotation, the previous one."""

    def __init__(
        self,
        source: TokenSource,
        overlap_s: float,
        on_rotate: Callable[[Rotation], None] | None = None,
        clock: Callable[[], float] = time.time,
        forbidden: bytes | None = None,
    ) -> None:
        self.source = source
        self.forbidden = forbidden  # the admin token's digest: never a join token too
        self.overlap_s = overlap_s
        self.on_rotate = on_rotate
        self.clock = clock
        self.current = digest(source.read())
        self.previous: bytes | None = None
        self.previous_until = 0.0
        self.last_rotation: Rotation | None = None
        self.rotations = 0
        self.read_error: str | None = None

    def refresh(self) -> None:
        """Pick up a rewritten token file; the token it replaces stays valid for the overlap."""
        try:
            token = self.source.read()
        except TokenError as exc:  # keep the last good token; say so in the status
            self.read_error = str(exc)
            return
        self.read_error = None
        new = digest(token)
        if hmac.compare_digest(new, self.current):
            return
        if same(new, self.forbidden):
            self.read_error = f"{self.source.describe()} holds the admin token: not taken as the join token"
            return
        now = self.clock()
        self.previous, self.previous_until = self.current, now + self.overlap_s
        self.current = new
        self.rotations += 1
        self.last_rotation = Rotation(now, self.previous_until, self.rotations)
        log.warning(
            "join token rotated (%s); the previous one is accepted for %.1f s more",
            self.source.describe(),
            self.overlap_s,
        )
        if self.on_rotate is not None:
            self.on_rotate(self.last_rotation)

    def accepts(self, token: str) -> bool:
        self.refresh()
        presented = digest(token)
        current = same(presented, self.current)
        previous = same(presented, self.previous) and self.clock() < self.previous_until
        return current or previous

    def status(self) -> dict[str, Any]:
        self.refresh()
        now = self.clock()
        rotation = self.last_rotation
        return {
            "source": self.source.describe(),
            "overlap_s": self.overlap_s,
            "rotations": self.rotations,
            "rotated_at": rotation.at if rotation else None,
            "previous_valid_until": self.previous_until if self.previous is not None else None,
            "previous_accepted": self.previous is not None and now < self.previous_until,
            "read_error": self.read_error,
        }


class AuditBudget:
    """At most ``burst`` refusals audited per ``window_s``: a stranger hammering the gateway must not
    fill its catalog. Returns, once per window, how many were left out of the previous one."""

    def __init__(self, burst: int = AUDIT_BURST, window_s: float = AUDIT_WINDOW_S) -> None:
        self.burst, self.window_s = burst, window_s
        self._window_start = -float("inf")
        self._used = 0
        self.suppressed = 0  # in the current window
        self.suppressed_total = 0

    def admit(self, now: float) -> tuple[bool, int]:
        """(audit this one?, refusals suppressed in the window that just ended)."""
        ended = 0
        if now - self._window_start >= self.window_s:
            ended, self.suppressed = self.suppressed, 0
            self._window_start, self._used = now, 0
        if self._used < self.burst:
            self._used += 1
            return True, ended
        self.suppressed += 1
        self.suppressed_total += 1
        return False, ended


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def refuse(request: Request, api: str, reason: str, status: int, message: str) -> HTTPException:
    """Log, count and audit a refusal; the exception to raise (``{"error": message}``)."""
    gw: Gateway = request.app.state.gateway
    client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
    where = f"{request.method} {request.url.path}"
    log.warning("refused %s from %s: %s", where, client, message)
    gw.metrics.auth_refused.labels(api, reason).inc()
    audit, suppressed = gw.auth_audit.admit(time.monotonic())
    try:
        if suppressed:
            details = {"count": suppressed, "window_s": AUDIT_WINDOW_S}
            gw.audit_later("auth_refused_suppressed", None, details)
        if audit:
            details = {"api": api, "reason": reason, "status": status, "request": where, "client": client}
            gw.audit_later("auth_refused", None, {**details, "message": message})
    except RuntimeError:  # called off the event loop: the refusal stands, logged and counted
        log.error("refusal of %s not audited: no event loop in this thread", where)
    headers = {"WWW-Authenticate": 'Bearer realm="sut"'} if status == 401 else None
    return HTTPException(status, message, headers=headers)


def admin_token_matches(gw: Gateway, token: str) -> bool:
    return same(digest(token), gw.admin_digest)


def require_admin(request: Request) -> None:
    """The admin API's gate (a FastAPI dependency)."""
    gw: Gateway = request.app.state.gateway
    token = bearer(request)
    if token is None:
        raise refuse(
            request, "admin", MISSING, 401, "missing admin token: send 'Authorization: Bearer <token>'"
        )
    if admin_token_matches(gw, token):
        return
    if gw.join_tokens.accepts(token):
        raise refuse(request, "admin", WRONG_KIND, 403, "a join token cannot use the admin API")
    raise refuse(request, "admin", WRONG, 401, "wrong admin token")


def require_join(request: Request, action: str) -> None:
    """The worker registry's gate: the join token (``action``: register, heartbeat, deregister)."""
    gw: Gateway = request.app.state.gateway
    token = bearer(request)
    if token is None:
        message = f"missing join token: a worker must send 'Authorization: Bearer <join token>' to {action}"
        raise refuse(request, "worker", MISSING, 401, message)
    if gw.join_tokens.accepts(token):
        return
    if admin_token_matches(gw, token):
        message = f"the admin token is not a join token: a worker must present the join token to {action}"
        raise refuse(request, "worker", WRONG_KIND, 403, message)
    raise refuse(request, "worker", WRONG, 401, f"wrong join token: cannot {action}")


def require_owner(request: Request, worker: Worker, action: str) -> None:
    """Only the worker the registration answered may heartbeat or deregister its entry."""
    presented = request.headers.get(WORKER_TOKEN_HEADER, "").strip()
    if not presented:
        message = (
            f"missing worker token: send the 'X-Worker-Token' the registration answered to {action} "
            f"worker {worker.id}"
        )
        raise refuse(request, "worker", MISSING, 401, message)
    if not same(digest(presented), worker.token_digest):
        message = f"a worker may only {action} itself: this worker token does not belong to {worker.id}"
        raise refuse(request, "worker", NOT_OWNER, 403, message)
