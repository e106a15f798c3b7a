"""The ``sut`` command, run as a subprocess against the real cluster it starts.

HOME and XDG_STATE_HOME point to a temporary directory, so the state file, the data dir and the
admin token of the cluster never touch the user's own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sut import launcher

CLI_TIMEOUT = 180.0


def run_sut(env: dict[str, str], *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sut", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure is told in exactly one stderr line, without a traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SUT_GATEWAY", "SUT_ADMIN_TOKEN")}
    env.update(HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"))
    return env


def recorded_pids(state_file: Path) -> list[int]:
    if not state_file.exists():
        return []
    clusters = json.loads(state_file.read_text())["clusters"]
    return [p["pid"] for c in clusters for p in c["processes"]]


@pytest.fixture
def state_file(cli_env: dict[str, str]) -> Iterator[Path]:
    """The state file of this test; whatever it still records is killed at teardown, even on failure."""
    path = Path(cli_env["XDG_STATE_HOME"]) / "sut" / "clusters.json"
    yield path
    for pid in recorded_pids(path):
        if launcher.process_running(pid, "sut."):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
def test_up_status_swap_rollback_down(cli_env: dict[str, str], state_file: Path) -> None:
    up = run_sut(cli_env, "up", "--workers", "2", "--join-token-overlap", "1")
    assert up.returncode == 0, up.stderr
    assert "starting gateway" in up.stderr  # progress goes to stderr
    state = json.loads(state_file.read_text())["clusters"][-1]
    gateway = state["gateway_url"]
    assert gateway.startswith("http://127.0.0.1:") and gateway in up.stdout
    workers = [p for p in state["processes"] if p["role"] == "worker"]
    assert len(workers) == 2 and all(w["url"] in up.stdout for w in workers)
    assert str(state_file) in up.stdout and state["data_dir"] in up.stdout
    assert Path(state["data_dir"]).is_relative_to(Path(cli_env["XDG_STATE_HOME"]) / "sut")
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert state["admin_token"] not in up.stdout + up.stderr
    pids = recorded_pids(state_file)
    assert len(pids) == 3 and all(launcher.process_running(pid) for pid in pids)
    for pid in pids:  # the token is handed over in the environment, not shown by `ps`
        assert state["admin_token"].encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    # The services outlive the CLI and serve: the gateway answers with the production version.
    infer = httpx.post(
        f"{gateway}/v2/models/demo/infer",
        json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
        timeout=10,
        trust_env=False,
    )
    assert infer.status_code == 200 and infer.json()["model_version"] == "1"

    status = run_sut(cli_env, "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["gateway"].rstrip("/") == gateway
    assert len(doc["workers"]) == 2
    for worker in doc["workers"]:
        assert {"id", "url", "healthy", "models"} <= set(worker)
        assert worker["healthy"] is True
        assert {"name": "demo", "version": "1"} in [
            {"name": m["name"], "version": str(m["version"])} for m in worker["models"]
        ]
    (demo,) = [m for m in doc["models"] if m["name"] == "demo"]
    assert isinstance(demo["versions"], list) and sorted(demo["versions"]) == ["1", "2"]
    assert isinstance(demo["aliases"], dict) and demo["aliases"]["production"] == "1"

    human = run_sut(cli_env, "status")
    assert human.returncode == 0 and "demo" in human.stdout and gateway in human.stdout

    swap = run_sut(cli_env, "swap", "demo", "2")
    assert swap.returncode == 0, swap.stderr
    assert "1 -> 2" in swap.stdout
    assert _production(cli_env) == "2"

    refused = run_sut(cli_env, "swap", "demo", "9")
    assert refused.returncode == 1
    assert "9" in one_line_error(refused)
    assert _production(cli_env) == "2"

    # --gateway and SUT_GATEWAY pick the gateway; a wrong token is refused in one line.
    wrong = run_sut({**cli_env, "SUT_GATEWAY": gateway}, "status", "--token", "wrong-token")
    assert wrong.returncode == 1 and "401" in one_line_error(wrong)

    rollback = run_sut(cli_env, "rollback", "demo")
    assert rollback.returncode == 0, rollback.stderr
    assert "2 -> 1" in rollback.stdout
    assert _production(cli_env) == "1"

    _join_token_is_secret_and_rotates(cli_env, state, pids)

    down = run_sut(cli_env, "down")
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not launcher.process_running(pid), f"pid {pid} survived `sut down`"
        assert f"pid {pid}" in down.stdout
    assert recorded_pids(state_file) == []
    gone = run_sut(cli_env, "status")
    assert gone.returncode == 1
    one_line_error(gone)


@pytest.mark.slow
def test_up_again_on_the_same_data_dir_keeps_the_catalog(
    cli_env: dict[str, str], state_file: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "cluster-data"
    first = run_sut(cli_env, "up", "--workers", "1", "--data-dir", str(data_dir))
    assert first.returncode == 0, first.stderr
    assert run_sut(cli_env, "swap", "demo", "2").returncode == 0
    assert run_sut(cli_env, "down").returncode == 0

    again = run_sut(cli_env, "up", "--workers", "1", "--data-dir", str(data_dir))
    assert again.returncode == 0, again.stderr
    assert "production = 2" in again.stdout
    gateway = json.loads(state_file.read_text())["clusters"][-1]["gateway_url"]
    infer = httpx.post(
        f"{gateway}/v2/models/demo/infer",
        json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
        timeout=10,
        trust_env=False,
    )
    assert infer.status_code == 200 and infer.json()["model_version"] == "2"
    assert run_sut(cli_env, "down").returncode == 0


def _join_token_is_secret_and_rotates(cli_env: dict[str, str], state: dict, pids: list[int]) -> None:
    """The workers' join token: in a 0600 file, on no command line; a stranger without it cannot
    register; ``sut rotate-join-token`` replaces it while the workers keep heartbeating."""
    gateway, join_file = state["gateway_url"], Path(state["join_token_file"])
    assert stat.S_IMODE(join_file.stat().st_mode) == 0o600
    old = join_file.read_text().strip()
    assert old and old != state["admin_token"]
    for pid in pids:
        assert old.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    body = {"url": "http://127.0.0.1:9", "name": "stranger", "models": []}
    with httpx.Client(base_url=gateway, timeout=10, trust_env=False) as http:
        assert http.post("/internal/workers/register", json=body).status_code == 401
        rotate = run_sut(cli_env, "rotate-join-token")
        assert rotate.returncode == 0, rotate.stderr
        assert "accepted for" in rotate.stdout and old not in rotate.stdout
        new = join_file.read_text().strip()
        assert new != old and stat.S_IMODE(join_file.stat().st_mode) == 0o600
        time.sleep(1.5)  # the overlap (1 s) is over: the old token no longer joins
        stale = http.post("/internal/workers/register", json=body, headers={"Authorization": f"Bearer {old}"})
        assert stale.status_code == 401, stale.text
        admin = {"Authorization": f"Bearer {state['admin_token']}"}
        time.sleep(2.0)  # two heartbeats sent with the token re-read from the rewritten file
        workers = http.get("/admin/workers", headers=admin).json()
        assert len(workers) == 2 and all(w["healthy"] for w in workers), workers


def _production(env: dict[str, str]) -> str:
    status = run_sut(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    (demo,) = [m for m in json.loads(status.stdout)["models"] if m["name"] == "demo"]
    return demo["aliases"]["production"]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["swap", "demo"],
        ["rollback"],
        ["up", "--workers", "0"],
        ["up", "--workers", "many"],
        ["up", "--port", "70000"],
        ["status", "--no-such-flag"],
    ],
)
def test_usage_errors_exit_2(cli_env: dict[str, str], args: list[str]) -> None:
    result = run_sut(cli_env, *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["status"], ["swap", "demo", "2"], ["rollback", "demo"], ["status", "--json"]]
)
def test_unreachable_gateway_exits_1_with_one_line(cli_env: dict[str, str], args: list[str]) -> None:
    gateway = f"http://127.0.0.1:{launcher.free_port()}"  # nothing listens there
    result = run_sut(cli_env, *args, "--gateway", gateway, "--token", "t", timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    line = one_line_error(result)
    assert "unreachable" in line and gateway in line


def test_up_on_a_busy_port_fails_cleanly(cli_env: dict[str, str], state_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_sut(cli_env, "up", "--workers", "1", "--port", str(port), "--timeout", "30", timeout=90)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("sut up: gateway exited") and "address already in use" in reason
    assert recorded_pids(state_file) == []  # nothing left recorded, nothing left running


def test_no_cluster_to_find_exits_1(cli_env: dict[str, str]) -> None:
    for args in (["status"], ["down"]):
        result = run_sut(cli_env, *args, timeout=30)
        assert result.returncode == 1
        one_line_error(result)


@pytest.mark.parametrize("command", [[], ["up"], ["status"], ["swap"], ["rollback"], ["down"]])
def test_help_on_every_command(cli_env: dict[str, str], command: list[str]) -> None:
    result = run_sut(cli_env, *command, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sut")
