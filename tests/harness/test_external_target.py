"""The external target: the protocol features against a cluster someone started by hand (``sut up``),
described only by a profile; and a bad profile or target name stops the run before any scenario (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from harness.processes import free_port
from harness.targets.reference.models import run_artifact

ROOT = Path(__file__).resolve().parents[2]


def _pytest(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsx", "--gherkin", *args]
    return subprocess.run(
        argv, cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True, timeout=timeout
    )


def _sut(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sut", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def _examples(artifacts: Path) -> str:
    """One-row examples per version, their outputs computed here from the cluster's own artifacts."""
    rows = ([0.5, -1.0, 0.25, 2.0], [-0.75, 0.1, 1.5, -2.0])
    blocks = []
    for version in ("1", "2"):
        for row in rows:
            (out,) = run_artifact(artifacts / "demo" / version / "model.onnx", {"input": list(row)})
            blocks.append(
                f'[[models.examples]]\nversion = "{version}"\ninputs = {{input = {list(row)}}}\n'
                f"outputs = {{predict = [{out!r}]}}\n"
            )
    return "\n".join(blocks)


@pytest.mark.slow
def test_the_protocol_features_pass_against_a_cluster_started_by_hand(tmp_path: Path) -> None:
    port, token, name = free_port(), f"t-{uuid.uuid4().hex}", f"ext-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    data = tmp_path / "cluster"
    started = _sut("up", "--workers", "1", "--port", str(port), "--data-dir", str(data), "--token", token,
                   "--name", name, env=env)  # fmt: skip
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        profile = tmp_path / "staging.toml"
        profile.write_text(
            textwrap.dedent(f"""\
                url = "http://127.0.0.1:{port}"
                auth_header = "Authorization"
                auth_env = "EXTERNAL_TEST_TOKEN"
                auth_prefix = "Bearer "
                capabilities = ["inference", "repository", "metrics"]

                [metrics]
                url = "http://127.0.0.1:{port}/metrics"
                request_counter = "sut_requests_total"
                latency_histogram = "sut_request_latency_seconds"

                [[models]]
                name = "demo"
                versions = ["1", "2"]
                inputs = [{{name = "input", datatype = "FP32", shape = [-1, 4]}}]
                outputs = [{{name = "predict", datatype = "FP32", shape = [-1, 1]}}]
            """)
            + _examples(data / "artifacts")
        )
        features = sorted(str(p) for p in (ROOT / "features").glob("protocol_*.feature"))
        run = _pytest("--target-profile", str(profile), *features, env={**env, "EXTERNAL_TEST_TOKEN": token})
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "target: external" in run.stdout
        assert " failed" not in run.stdout and " skipped" not in run.stdout, run.stdout[-3000:]
    finally:
        _sut("down", "--name", name, env=env)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("capabilities = ['inference']\n", "url: missing (expected a string)"),
        ("url = 42\n", "url: expected a string, got int 42"),
        ('url = "http://127.0.0.1:{port}"\ncapabilities = ["telepathy"]\n',
         "capabilities: unknown capability 'telepathy'"),
        ('url = "http://127.0.0.1:{port}"\ncapabilities = ["links"]\n',
         "capabilities: 'links' needs services"),
        ('url = "http://127.0.0.1:{port}"\n', "url: http://127.0.0.1:{port} is not reachable"),
        ('url = "http://127.0.0.1:{port}"\nauth_header = "X-Key"\nauth_env = "NO_SUCH_VARIABLE_SET"\n',
         "auth_env: the environment variable NO_SUCH_VARIABLE_SET is not set"),
    ],
)  # fmt: skip
def test_a_bad_profile_stops_the_run_with_one_line_naming_file_and_key(
    tmp_path: Path, profile: str, expected: str
) -> None:
    port = free_port()  # nothing listens there
    models = (
        '\n[[models]]\nname = "demo"\nversions = ["1"]\n'
        'inputs = [{name = "input", datatype = "FP32", shape = [-1, 4]}]\n'
    )
    path = tmp_path / "bad.toml"
    path.write_text(profile.format(port=port) + models)
    run = _pytest("--target-profile", str(path), "--collect-only", timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"{path}: {expected.format(port=port)}" in run.stdout + run.stderr, run.stdout + run.stderr


def test_an_unknown_target_stops_the_run_naming_the_known_ones() -> None:
    run = _pytest("--target", "nonesuch", "--collect-only", timeout=120)
    assert run.returncode == 2
    assert "unknown target 'nonesuch'; known: mlserver, reference" in run.stdout + run.stderr
