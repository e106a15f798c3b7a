"""Docker memory limits for real: a container over its mem_limit is OOM-killed (exit 137 + OOMKilled), and a
plain ``docker kill`` (also exit 137) is not taken for one. Needs a Docker engine and a built worker image."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from harness.faults.docker_memory import container_oom_killed, limit_container, start_options

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MB = 1_000_000
# Waits until the limit is in place, then allocates 10 MB at a time and touches it.
HOG = (
    "import time\ntime.sleep(2)\nblocks = []\n"
    "while True:\n    blocks.append(bytearray(10 * 1024 * 1024))\n    time.sleep(0.01)\n"
)


@pytest.fixture(scope="module")
def image() -> str:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # no engine here
        pytest.skip(f"no Docker engine answers: {exc}")
    images = [tag for img in client.images.list("servingbdd/worker") for tag in img.tags]
    if not images:
        pytest.skip("no servingbdd/worker image built yet (the docker backend builds it)")
    return images[0]


@pytest.fixture
def run(image: str) -> Iterator[Any]:
    import docker

    client = docker.from_env()
    started: list[Any] = []

    def start(command: list[str], **options: Any) -> Any:
        container = client.containers.run(
            image,
            command,
            detach=True,
            network_mode="none",
            entrypoint=[],
            labels={"servingbdd.test": "1"},
            **options,
        )
        started.append(container)
        return container

    yield start
    for container in started:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def test_a_container_over_its_updated_limit_is_oom_killed(run: Any) -> None:
    container = run(["python", "-c", HOG])
    assert limit_container(container, 100 * MB) == "docker"
    result = container.wait(timeout=60)
    assert result["StatusCode"] == 137, result
    assert container_oom_killed(container)


def test_a_container_started_under_the_limit_is_oom_killed(run: Any) -> None:
    container = run(["python", "-c", HOG], **start_options(100 * MB))
    assert container.wait(timeout=60)["StatusCode"] == 137
    assert container_oom_killed(container)


def test_a_plain_kill_is_not_an_oom_kill(run: Any) -> None:
    container = run(["python", "-c", "import time; time.sleep(60)"], **start_options(200 * MB))
    container.kill()
    assert container.wait(timeout=30)["StatusCode"] == 137
    assert not container_oom_killed(container), "docker kill (exit 137) was taken for an OOM kill"
