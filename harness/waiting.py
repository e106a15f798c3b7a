"""The one way the harness waits for a service to reach a state.

:func:`until` calls a probe until a predicate holds on its result, and gives up at once, with the
service's log tail, when a watched service has exited: a service that died at start fails the wait in
a fraction of a second instead of after the timeout. Backends wait for health endpoints with it, targets
for registrations, steps for the states they promise ("within 3 seconds the gateway lists 2 workers").
(The shape follows testcontainers' wait strategies: a probe against a small protocol, shared by every
backend.) :func:`during` is the other way round: a state that must hold for a whole window, failing at the
first probe that breaks it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx

from harness import http_client

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The state was not reached in time; the message says what was awaited and what was last seen."""


class ServiceExited(RuntimeError):
    """A watched service exited while something waited on it; the message carries its log tail."""


class Watched(Protocol):
    """What :func:`until` needs to know about a service it watches."""

    def exit_code(self, name: str) -> int | None: ...

    def logs(self, name: str) -> str: ...


@dataclass(frozen=True)
class Watch:
    """Fail the wait at once when any of ``names`` has exited (asked of ``services``)."""

    services: Watched
    names: tuple[str, ...]

    def check(self, what: str) -> None:
        for name in self.names:
            code = self.services.exit_code(name)
            if code is not None:
                raise ServiceExited(
                    f"{name} exited (code {code}) while waiting for {what}; last lines of its log:\n"
                    f"{log_tail(self.services.logs(name))}"
                )


def log_tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def until(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    watch: Watch | Iterable[Watch] = (),
    seen: Callable[[T], str] | None = None,
) -> T:
    """Call ``probe`` until ``done(result)``; return that result.

    Raises :class:`WaitTimeout` after ``timeout`` seconds (naming ``what`` and, with ``seen``, the last
    result) and :class:`ServiceExited` as soon as a watched service is found dead.
    """
    watches = [watch] if isinstance(watch, Watch) else list(watch)
    deadline = time.monotonic() + timeout
    while True:
        for w in watches:
            w.check(what)
        result = probe()
        if done(result):
            return result
        if time.monotonic() >= deadline:
            last = f"; last seen: {seen(result)}" if seen is not None else ""
            raise WaitTimeout(f"{what} did not happen within {timeout:g} s{last}")
        time.sleep(interval)


def poll(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 0.1) -> T:
    """Like :func:`until`, but return the last result instead of raising when time runs out: for steps
    whose assertion message should describe what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def during(
    probe: Callable[[], T],
    check: Callable[[T], bool] = lambda _: True,
    *,
    seconds: float,
    what: str,
    interval: float = 0.1,
    seen: Callable[[T], str] = repr,
) -> list[T]:
    """Call ``probe`` for ``seconds`` (at once, every ``interval``, and once more at the end); every
    result must pass ``check``: a state that must hold for a whole window ("the registry stays unchanged
    for 3 heartbeats"). Returns the results in order, so the default ``check`` collects a window's samples.

    Raises :class:`AssertionError` at the first result failing ``check``, naming ``what`` (the state that
    had to hold), when it broke and the result (through ``seen``).
    """
    began = time.monotonic()
    results: list[T] = []
    while True:
        result = probe()
        results.append(result)
        if not check(result):
            raise AssertionError(
                f"{what} did not hold for {seconds:g} s: it broke after {time.monotonic() - began:.2f} s; "
                f"seen: {seen(result)}"
            )
        if time.monotonic() - began >= seconds:
            return results
        time.sleep(interval)


def http_ok(url: str, *, headers: dict[str, str] | None = None, timeout: float = 1.0) -> bool:
    """True when ``GET url`` answers 2xx (never through a proxy from the environment)."""
    try:
        return http_client.get(url, headers=headers, timeout=timeout).is_success
    except httpx.HTTPError:
        return False
