"""The catalog in a real PostgreSQL server (a throwaway cluster made with initdb on a free port)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_fixtures import Cluster, free_port

from sut.demo_models import build_demo

PG_BIN = Path(os.environ.get("SERVINGBDD_PG_BIN", "/usr/lib/postgresql/15/bin"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason=f"no PostgreSQL server binaries in {PG_BIN}"),
]


def _as_pg_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as ``postgres`` then."""
    if os.geteuid() != 0:
        return argv
    pwd.getpwnam("postgres")  # KeyError -> no such user: the fixture skips
    return ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    # not under pytest's tmp dir: that one is private to the test user, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="sut-gateway-pg-"))
    if os.geteuid() == 0:
        try:
            shutil.chown(root, "postgres")
        except (LookupError, OSError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip(f"cannot hand a directory to the postgres user: {exc}")
    data, port = root / "data", free_port()
    init = subprocess.run(
        _as_pg_user([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        capture_output=True,
        timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.decode(errors='replace')[-500:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    pg_ctl = str(PG_BIN / "pg_ctl")
    started = subprocess.run(
        _as_pg_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start"]
        ),
        capture_output=True,
        timeout=90,
    )
    if started.returncode != 0:
        log = (root / "log").read_text(errors="replace")[-500:] if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {started.stderr.decode(errors='replace')[-300:]} {log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_pg_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_catalog_lives_in_postgres_and_survives_a_restart(tmp_path: Path, postgres_dsn: str) -> None:
    c = Cluster(tmp_path, db=postgres_dsn)
    build_demo(c.artifact_root, versions=("1", "2"))
    try:
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        c.register_version("demo", "demo/2/model.onnx", parent_version="1")
        r = c.post("/admin/models/demo/versions", {"artifact_uri": "demo/2/model.onnx", "version": "2"})
        assert r.status_code == 409
        before = (c.get("/admin/models").json(), c.get("/admin/models/demo/versions").json())
        audit = c.get("/admin/audit").json()
        assert [e["action"] for e in audit] == ["register_version", "set_alias", "register_version"]
        assert not (c.data_dir / "catalog.db").exists()  # nothing went to the SQLite default
        assert c.gateway is not None
        c.gateway.stop()
        c.start_gateway()
        assert (c.get("/admin/models").json(), c.get("/admin/models/demo/versions").json()) == before
        assert c.get("/admin/audit").json() == audit
        assert before[0] == [{"name": "demo", "versions": ["1", "2"], "aliases": {"production": "1"}}]
    finally:
        c.close()


def test_unreachable_postgres_is_a_one_line_startup_error(tmp_path: Path) -> None:
    from sut import launcher

    argv = launcher.gateway_command(
        port=free_port(),
        data_dir=tmp_path,
        artifact_root=tmp_path,
        db=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
    )
    env = {**os.environ, **launcher.service_env(admin_token="x", join_token="j")}
    done = subprocess.run(argv, capture_output=True, timeout=60, env=env)
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "cannot open the catalog" in err and "Traceback" not in err
