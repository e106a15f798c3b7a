"""Process supervision on real child processes: groups, logs, stop/kill, cleanup on exit and signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.processes import ManagedProcess, free_port, kill_all, live_processes, spawn

PY = sys.executable


@pytest.fixture
def spawned() -> Iterator[list[ManagedProcess]]:
    """Processes a test started; killed afterwards whatever happened."""
    procs: list[ManagedProcess] = []
    yield procs
    for proc in procs:
        proc.kill()


def _python(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_spawn_runs_in_its_own_group_and_logs_both_streams(
    tmp_path: Path, spawned: list[ManagedProcess]
) -> None:
    log = tmp_path / "logs" / "child.log"
    proc = spawn(
        "child",
        _python("import sys; print('to stdout', flush=True); print('to stderr', file=sys.stderr)"),
        log_path=log,
    )
    spawned.append(proc)
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    assert proc.wait(30) == 0
    assert "to stdout" in log.read_text() and "to stderr" in log.read_text()


def test_kill_returns_minus_nine_and_forgets_the_process(
    tmp_path: Path, spawned: list[ManagedProcess]
) -> None:
    proc = spawn("sleeper", [PY, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "s.log")
    spawned.append(proc)
    assert proc in live_processes()
    assert proc.kill() == -9
    assert proc not in live_processes()
    assert proc.kill() == -9  # again: harmless


def test_terminate_lets_a_cooperative_process_exit_cleanly(
    tmp_path: Path, spawned: list[ManagedProcess]
) -> None:
    code = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        print("ready", flush=True)
        time.sleep(60)
    """
    log = tmp_path / "c.log"
    proc = spawn("cooperative", _python(code), log_path=log)
    spawned.append(proc)
    _wait_for_text(log, "ready")
    assert proc.terminate(grace=10) == 0


def test_terminate_kills_a_process_that_ignores_sigterm_after_the_grace(
    tmp_path: Path, spawned: list[ManagedProcess]
) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """
    log = tmp_path / "s.log"
    proc = spawn("stubborn", _python(code), log_path=log)
    spawned.append(proc)
    _wait_for_text(log, "ready")
    started = time.monotonic()
    assert proc.terminate(grace=0.5) == -9
    assert 0.4 < time.monotonic() - started < 10


def test_pause_and_resume(
    tmp_path: Path, spawned: list[ManagedProcess], process_state: Callable[[int], str]
) -> None:
    proc = spawn("sleeper", [PY, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "p.log")
    spawned.append(proc)
    proc.pause()
    assert process_state(proc.pid) == "T"
    proc.resume()
    assert process_state(proc.pid) in {"S", "R"}


def test_kill_all_reaches_grandchildren_and_paused_processes(
    tmp_path: Path, spawned: list[ManagedProcess], pid_gone: Callable[[int], bool]
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """
    parent = spawn("parent", _python(code), log_path=tmp_path / "g.log")
    paused = spawn("paused", [PY, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "p.log")
    spawned += [parent, paused]
    _wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
    grandchild = int(pid_file.read_text())
    paused.pause()
    assert kill_all() >= 2  # every child of this test process (no other test's survives a test)
    assert parent.returncode == -9 and paused.returncode == -9
    _wait_for(lambda: pid_gone(grandchild))  # reparented and reaped once killed
    assert parent not in live_processes() and paused not in live_processes()


SCRIPT_WITH_CHILD = """
import sys, time
from pathlib import Path
from harness.processes import spawn
child = spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], log_path=Path(sys.argv[1]))
child.pause()  # a stopped child must die too
print(child.pid, flush=True)
{ending}
"""


@pytest.mark.parametrize(
    ("ending", "send", "expected_rc"),
    [
        ("time.sleep(120)", signal.SIGTERM, -signal.SIGTERM),  # dies of SIGTERM, as without the harness
        # KeyboardInterrupt still raised; uncaught, Python then dies of SIGINT itself
        ("time.sleep(120)", signal.SIGINT, -signal.SIGINT),
        ("sys.exit(3)", None, 3),  # normal exit: atexit
    ],
    ids=["sigterm", "sigint", "exit"],
)
def test_no_child_outlives_its_parent(
    tmp_path: Path,
    subprocess_env: dict[str, str],
    pid_gone: Callable[[int], bool],
    ending: str,
    send: signal.Signals | None,
    expected_rc: int,
) -> None:
    parent = subprocess.Popen(
        [PY, "-c", SCRIPT_WITH_CHILD.format(ending=ending), str(tmp_path / "child.log")],
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
        if send is not None:
            parent.send_signal(send)
        _, err = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
    assert parent.returncode == expected_rc, err
    if send == signal.SIGINT:
        assert "KeyboardInterrupt" in err
    _wait_for(lambda: pid_gone(child_pid))


def _wait_for(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _wait_for_text(path: Path, text: str) -> None:
    _wait_for(lambda: path.exists() and text in path.read_text())
