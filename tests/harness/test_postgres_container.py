"""The docker backend's PostgreSQL container: a real server on the scenario network, reached from the host
(127.0.0.1) and from another container (by its alias), killed (docker kill), started again with its data,
removed at teardown.

Skipped, with the reason, when no engine answers or the image is not built (offline:
``python tools/build_postgres_image.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness import docker_cleanup
from harness.backends.docker import DockerBackend
from harness.postgres import PostgresError
from harness.postgres_container import IMAGE, PostgresContainer

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    try:
        client.images.get(IMAGE)
    except Exception:
        client.close()
        pytest.skip(f"no image {IMAGE} here: build it with `python tools/build_postgres_image.py`")
    yield client
    client.close()


@pytest.fixture
def backend(docker_client, tmp_path: Path) -> Iterator[DockerBackend]:
    backend = DockerBackend(tmp_path / "cluster")
    yield backend
    backend.teardown()


def _scenario_resources(client, backend: DockerBackend) -> tuple[int, int]:
    label = f"{docker_cleanup.LABEL_SCENARIO}={backend.scenario_id}"
    return (
        len(client.containers.list(all=True, filters={"label": label})),
        len(client.networks.list(filters={"label": label})),
    )


def _query_by_alias(client, backend: DockerBackend, db: PostgresContainer, sql: str) -> str:
    """``psql`` in another container on the scenario network, through the DSN the gateway gets."""
    out = client.containers.run(
        IMAGE,
        entrypoint=["psql"],
        command=[db.dsn, "-tAc", sql],
        network=backend.network_name,
        labels=db.labels,
        remove=True,
    )
    return out.decode().strip()


def test_kill_is_a_crash_and_a_start_keeps_the_data(docker_client, backend: DockerBackend) -> None:
    db = backend.database_server()
    assert db.dsn == "postgresql://postgres@postgres:5432/postgres"
    began = time.monotonic()
    db.start()
    first_start = time.monotonic() - began
    assert db.running()
    assert db.host_dsn.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(db.host_dsn) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (42)")
    assert _query_by_alias(docker_client, backend, db, "SELECT x FROM t") == "42"

    client = psycopg.connect(db.host_dsn)
    try:
        pid = db.kill()
        assert pid > 0 and not db.running() and db.kills == 1
        assert db.container.attrs["State"]["ExitCode"] == 137  # SIGKILL
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")  # its backend died with the server
    finally:
        client.close()
    with pytest.raises(PostgresError, match="not running"):
        db.kill()

    began = time.monotonic()
    db.start()  # the same container again
    restart = time.monotonic() - began
    print(f"\npostgres container: first start (initdb) {first_start:.2f} s, start after kill {restart:.2f} s")
    with psycopg.connect(db.host_dsn) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    assert "database system was interrupted" in db.log_tail(50)
    assert _query_by_alias(docker_client, backend, db, "SELECT count(*) FROM t") == "1"
    with pytest.raises(PostgresError, match="already running"):
        db.start()


def test_teardown_removes_the_container_and_the_network(docker_client, backend: DockerBackend) -> None:
    db = backend.database_server()
    assert backend.database_server() is db  # one per scenario
    db.start()
    assert _scenario_resources(docker_client, backend) == (1, 1)
    backend.teardown()
    assert _scenario_resources(docker_client, backend) == (0, 0)
    assert (backend.workdir / "logs" / "postgres.log").is_file()
    db.close()  # idempotent, never raises


def test_a_missing_image_is_one_clear_error(docker_client, backend: DockerBackend) -> None:
    real = backend.database_server()
    db = PostgresContainer(
        docker_client,
        network=backend.network_name,
        labels=real.labels,
        name=f"{real.name}-never",
        image="servingbdd/postgres:never-built",
    )
    with pytest.raises(
        PostgresError, match=r"no image servingbdd/postgres:never-built here: .*build_postgres_image"
    ):
        db.start()
    assert _scenario_resources(docker_client, backend) == (0, 1)


# -- the offline image tool ---------------------------------------------------------------------------


def _image_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(ROOT / "tools" / "build_postgres_image.py"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_image_tool_without_an_engine_says_so_in_one_line(tmp_path: Path) -> None:
    result = _image_tool(env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode == 1
    assert result.stderr.startswith("build_postgres_image: error: no Docker engine answers")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_image_tool_skips_an_existing_image(docker_client) -> None:
    began = time.monotonic()
    result = _image_tool()
    assert result.returncode == 0, result.stderr
    assert f"{IMAGE} exists" in result.stdout and "nothing to do" in result.stdout
    assert time.monotonic() - began < 30
