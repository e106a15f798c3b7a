"""The one registry of what must be undone when the test process ends, however it ends.

Modules register a cleanup (kill the service processes, stop the load, lift the memory limits, remove the
containers); it runs at interpreter exit (``atexit``) and on SIGTERM, SIGINT and SIGHUP, newest first,
before the handler that was installed before ours (so Ctrl-C still raises ``KeyboardInterrupt`` and pytest
still tears down). A cleanup may name a lighter ``on_signal`` variant: a signal handler must not wait on a
lock the interrupted frame may hold. What a signal does after the cleanups, in place of its default
(dying of it), may be chained with :func:`chain_signal`, in whichever order the two are installed (the
pytest plugin makes SIGTERM end the run like Ctrl-C, so that its reports are still written). A SIGKILLed
process runs nothing: for that, :mod:`harness.processes` keeps pidfiles and :mod:`harness.docker_cleanup`
labels, which the next run sweeps. (The shape of pytest's ``Config.add_cleanup`` and of
:class:`contextlib.ExitStack`, process-wide.)
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_OWNER_PID = os.getpid()  # a forked child inherits the hooks; the resources are not its own
_lock = threading.RLock()  # re-entrant: a signal handler may interrupt a holder on this thread
_cleanups: dict[int, tuple[Callable[[], object], Callable[[], object]]] = {}
_next_key = 0
_previous: dict[int, object] = {}
_atexit_installed = False


def register(
    cleanup: Callable[[], object], *, on_signal: Callable[[], object] | None = None
) -> Callable[[], None]:
    """Run ``cleanup`` at exit (``on_signal``, default ``cleanup``, on a terminating signal) unless the
    returned ``unregister`` ran first."""
    global _next_key, _atexit_installed
    with _lock:
        key = _next_key
        _next_key += 1
        _cleanups[key] = (cleanup, on_signal or cleanup)
        if not _atexit_installed:
            _atexit_installed = True
            atexit.register(run_all)
    install_signal_handlers()

    def unregister() -> None:
        with _lock:
            _cleanups.pop(key, None)

    return unregister


def run_all(*, signalled: bool = False) -> None:
    """Run every registered cleanup once, newest first; one failure does not stop the others."""
    if os.getpid() != _OWNER_PID:
        return
    with _lock:
        pending = [pair[1] if signalled else pair[0] for _, pair in sorted(_cleanups.items())]
        _cleanups.clear()
    for cleanup in reversed(pending):
        try:
            cleanup()
        except Exception as exc:
            log.warning("cleanup %s failed: %s", getattr(cleanup, "__qualname__", cleanup), exc)


def install_signal_handlers() -> None:
    """Hook the terminating signals once, from the main thread (elsewhere only ``atexit`` applies)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        with _lock:
            if signum in _previous:  # once only: re-chaining could make a loop of handlers
                continue
            current = signal.getsignal(signum)
            if current is _on_signal or current == signal.SIG_IGN or current is None:
                continue
            _previous[signum] = current
        with contextlib.suppress(ValueError, OSError):  # not the main interpreter
            signal.signal(signum, _on_signal)


def chain_signal(signum: int, handler: Callable[[int, FrameType | None], object]) -> bool:
    """Make ``handler`` what the terminating signal ``signum`` does after the cleanups ran, in place of the
    default action (e.g. raise ``KeyboardInterrupt`` on SIGTERM). Whether our handler is installed yet or
    only later, the cleanups run first. A handler someone else installed is kept, and so is the default
    outside the main thread: then ``False``."""
    if threading.current_thread() is not threading.main_thread():
        return False
    with _lock:
        current = signal.getsignal(signum)
        if current is _on_signal:  # ours is installed: the handler becomes the one it passes the signal to
            if _previous.get(signum, signal.SIG_DFL) not in (signal.SIG_DFL, None):
                return False
            _previous[signum] = handler
            return True
        if current not in (signal.SIG_DFL, None):
            return False
        try:
            signal.signal(signum, handler)  # install_signal_handlers() chains to it when it hooks the signal
        except (ValueError, OSError):  # not the main interpreter
            return False
        return True


def _on_signal(signum: int, frame: FrameType | None) -> None:
    run_all(signalled=True)
    previous = _previous.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # e.g. default_int_handler raises KeyboardInterrupt
    elif previous == signal.SIG_DFL:  # die of the signal, as the process would have without us
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
