"""Process supervision on real child processes: groups, logs, stop/kill, cleanup on exit and signals."""

from __future__ import annotations

import contextlib
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
from harness.waiting import until

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
    until(predicate, timeout=timeout, what="the condition", interval=0.02)


def _wait_for_text(path: Path, text: str) -> None:
    _wait_for(lambda: path.exists() and text in path.read_text())


# -- services a SIGKILLed run left behind ----------------------------------------------------------------
OWNER = """
import sys
from pathlib import Path
from harness.processes import spawn
sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
print(spawn("left-behind", sleeper, log_path=Path(sys.argv[1])).pid, flush=True)
sys.stdin.readline()  # until told to end (normally: atexit kills the service, removes the pidfile)
"""
NEXT_RUN = """
import sys
from pathlib import Path
from harness.processes import spawn
spawn("next", [sys.executable, "-c", "pass"], log_path=Path(sys.argv[1])).wait(30)
"""


def _owner(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """A run that spawns a service and sleeps; returns it and the service's pid."""
    owner = subprocess.Popen(
        [PY, "-c", OWNER, str(tmp_path / "left.log")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return owner, int(owner.stdout.readline())  # type: ignore[union-attr]


def test_the_next_run_kills_the_services_of_a_sigkilled_run(
    tmp_path: Path, subprocess_env: dict[str, str], pid_gone: Callable[[int], bool]
) -> None:
    # A TMPDIR of its own: the sweep sees only this test's pidfiles, not other runs' on this machine.
    env = {**subprocess_env, "TMPDIR": str(tmp_path)}
    pidfiles = tmp_path / "servingbdd-services"
    owner, service = _owner(tmp_path, env)
    alive_owner, alive_service = _owner(tmp_path, env)
    try:
        assert len(list(pidfiles.glob("*.pids"))) == 2, "each run writes the groups it spawns"
        owner.kill()  # SIGKILL: no atexit, no signal handler runs
        owner.wait(10)
        time.sleep(0.5)
        assert not pid_gone(service), "its service is left behind (its own session, not killed with it)"

        nxt = subprocess.run([PY, "-c", NEXT_RUN, str(tmp_path / "next.log")], env=env, timeout=60)
        assert nxt.returncode == 0
        _wait_for(lambda: pid_gone(service))
        assert not pid_gone(alive_service), "a live run's services are not touched"
        assert len(list(pidfiles.glob("*.pids"))) == 1, "the dead run's pidfile is gone, the live one's kept"
        alive_owner.communicate("\n", timeout=30)  # the live run ends normally
        assert alive_owner.returncode == 0
    finally:
        for proc in (owner, alive_owner):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for pid in (service, alive_service):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    _wait_for(lambda: pid_gone(alive_service))
    assert list(pidfiles.glob("*.pids")) == [], "a run that ends normally removes its pidfile"


def test_a_recorded_pid_now_held_by_another_process_is_not_killed(
    tmp_path: Path, subprocess_env: dict[str, str], pid_gone: Callable[[int], bool]
) -> None:
    """A pidfile line whose start time does not match the live process with that pid (a reused pid) is
    left alone: only the group the dead run really started is killed."""
    env = {**subprocess_env, "TMPDIR": str(tmp_path)}
    pidfiles = tmp_path / "servingbdd-services"
    bystander = subprocess.Popen([PY, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        pidfiles.mkdir()
        # a dead owner (no such pid start time) that recorded the bystander's pid with another start time
        (pidfiles / "999999999-1.pids").write_text(f"{bystander.pid} 1\n")
        nxt = subprocess.run([PY, "-c", NEXT_RUN, str(tmp_path / "next.log")], env=env, timeout=60)
        assert nxt.returncode == 0
        assert list(pidfiles.glob("999999999-*.pids")) == [], "the dead owner's pidfile is swept"
        assert bystander.poll() is None and not pid_gone(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait(10)
