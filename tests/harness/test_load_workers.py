"""Load workers as containers on a Docker network (the docker backend's master/worker mode).

A web server container (the load image's own Python serving a directory) stands in for the target
on a labelled network; two Locust worker containers send to it by its alias, and the master on this
machine collects their samples through the bind-mounted run directory. Skipped, with the reason,
when no engine answers or no base image exists (offline: ``python tools/build_base_image.py``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import docker_cleanup
from harness.docker_images import ImageBuildError, ensure_image, resolve_base_image
from harness.load.endpoints import Endpoint
from harness.load.runner import LoadProfile, LoadRun
from harness.load.workers import LOAD_IMAGE, ContainerSite, network_gateway
from harness.waiting import until

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SCENARIO = docker_cleanup.LABEL_SCENARIO


@pytest.fixture(scope="module")
def client() -> Iterator:
    try:
        import docker

        engine = docker.from_env(timeout=60)
        engine.ping()
        resolve_base_image(engine)
    except ImageBuildError as exc:
        pytest.skip(str(exc))
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    yield engine
    engine.close()


@pytest.fixture
def network(client) -> Iterator[tuple[str, dict[str, str]]]:
    """A labelled network with a web server under the alias ``web`` (port 8080)."""
    scenario = uuid.uuid4().hex[:10]
    labels = {**docker_cleanup.run_labels(), SCENARIO: scenario}
    net = client.networks.create(f"servingbdd-load-{scenario}", labels=labels)
    image = ensure_image(LOAD_IMAGE, client=client).tag
    web = client.containers.run(
        image, ["python", "-u", "-m", "http.server", "8080"], detach=True, network=net.name, labels=labels
    )
    net.disconnect(web)
    net.connect(web, aliases=["web"])
    until(lambda: b"Serving HTTP" in web.logs(), timeout=60, what="the web server to listen")
    try:
        yield net.name, labels
    finally:
        docker_cleanup.remove_labelled(
            client, f"{docker_cleanup.LABEL_SCENARIO}={labels[docker_cleanup.LABEL_SCENARIO]}"
        )
        with contextlib.suppress(Exception):
            net.remove()


def test_the_master_listens_where_the_network_reaches_this_machine(client, network) -> None:
    name, _ = network
    address = network_gateway(client, name)
    assert address.count(".") == 3 and not address.startswith("127."), address


def test_worker_containers_send_to_the_alias_and_their_samples_come_back(
    client, network, tmp_path: Path
) -> None:
    name, labels = network
    site = ContainerSite(client, name, "http://web:8080", labels)
    profile = LoadProfile(users=4, load_workers=2, think_s=0.02, endpoints=(Endpoint("root", 1, "GET", "/"),))
    run = LoadRun.start("http://127.0.0.1:9", profile, tmp_path, site)  # the workers send to web:8080
    try:
        assert "--master-bind-host" in run.command and site.master_bind_host in run.command
        run.wait_for_samples(100, timeout=120)
    finally:
        run.stop()
    samples = run.samples()
    assert Counter(o.status for o in samples) == {200: len(samples)}, run.log_tail
    files = sorted(path.name.split("-")[1] for path in (run.rundir / "samples").glob("samples-*.jsonl"))
    assert files == ["c0", "c1"], f"one samples file per worker container: {files}"
    assert len(samples) >= 100
    assert all((tmp_path / run.rundir.name / f"locust-worker-{i}.log").exists() for i in (0, 1))
    left = client.containers.list(all=True, filters={"label": "servingbdd.service=load-worker-0"})
    assert not [
        c
        for c in left
        if c.labels.get(docker_cleanup.LABEL_SCENARIO) == labels[docker_cleanup.LABEL_SCENARIO]
    ]
