"""The cleanup registry (:mod:`harness.cleanup`) in child processes of its own: the signal handlers and
``atexit`` are process-wide, so no test changes this process's."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

PY = sys.executable


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


def _lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stdout.split()


def test_cleanups_run_once_at_exit_newest_first_and_unregister_drops_one(
    subprocess_env: dict[str, str],
) -> None:
    proc = _run(
        """
        from harness import cleanup
        cleanup.register(lambda: print("first", flush=True))
        drop = cleanup.register(lambda: print("dropped", flush=True))
        cleanup.register(lambda: print("last", flush=True))
        drop()
        """,
        subprocess_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc) == ["last", "first"]


def test_one_failing_cleanup_does_not_stop_the_others(subprocess_env: dict[str, str]) -> None:
    proc = _run(
        """
        from harness import cleanup
        cleanup.register(lambda: print("ran", flush=True))
        cleanup.register(lambda: 1 / 0)
        """,
        subprocess_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc) == ["ran"]


def test_sigterm_runs_the_signal_variant_then_the_process_dies_of_it(subprocess_env: dict[str, str]) -> None:
    proc = _run(
        """
        import os, signal
        from harness import cleanup
        say = lambda word: lambda: print(word, flush=True)
        cleanup.register(say("at-exit"), on_signal=say("on-signal"))
        os.kill(os.getpid(), signal.SIGTERM)
        print("survived", flush=True)
        """,
        subprocess_env,
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert _lines(proc) == ["on-signal"]


CHAINED = """
import os, signal
from harness import cleanup


def interrupt(signum, frame):
    raise KeyboardInterrupt


def register():
    cleanup.register(lambda: print("cleanup", flush=True))


def chain():
    print("chained" if cleanup.chain_signal(signal.SIGTERM, interrupt) else "refused", flush=True)


{first}()
{second}()
try:
    os.kill(os.getpid(), signal.SIGTERM)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize(("first", "second"), [("register", "chain"), ("chain", "register")])
def test_a_chained_handler_runs_after_the_cleanups_whichever_comes_first(
    subprocess_env: dict[str, str], first: str, second: str
) -> None:
    proc = _run(CHAINED.format(first=first, second=second), subprocess_env)
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc) == ["chained", "cleanup", "interrupted"]


@pytest.mark.parametrize("cleanup_first", [True, False], ids=["cleanup-first", "no-cleanup-yet"])
def test_chaining_keeps_a_handler_someone_else_installed(
    subprocess_env: dict[str, str], cleanup_first: bool
) -> None:
    proc = _run(
        f"""
        import os, signal
        from harness import cleanup
        signal.signal(signal.SIGTERM, lambda signum, frame: print("theirs", flush=True))
        if {cleanup_first}:
            cleanup.register(lambda: print("cleanup", flush=True))
        ours = lambda signum, frame: print("ours", flush=True)
        print(cleanup.chain_signal(signal.SIGTERM, ours), flush=True)
        if not {cleanup_first}:
            cleanup.register(lambda: print("cleanup", flush=True))
        os.kill(os.getpid(), signal.SIGTERM)
        print("survived", flush=True)
        """,
        subprocess_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc) == ["False", "cleanup", "theirs", "survived"]


def test_chaining_from_another_thread_changes_nothing(subprocess_env: dict[str, str]) -> None:
    proc = _run(
        """
        import signal, threading
        from harness import cleanup
        done = []
        thread = threading.Thread(target=lambda: done.append(cleanup.chain_signal(signal.SIGTERM, print)))
        thread.start()
        thread.join()
        print(done[0], signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)
        """,
        subprocess_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc) == ["False", "True"]
