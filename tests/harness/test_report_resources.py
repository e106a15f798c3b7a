"""CPU and memory sampling of real processes (/proc) and a real container (Docker stats)."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness import docker_cleanup
from harness.report.resources import ResourceSampler, Watched, _tree, proc_reading
from harness.waiting import until

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
HOLD_200_MIB = (
    "import time\nblock = bytearray(200 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\ntime.sleep(30)\n"
)


@pytest.fixture
def spawn() -> Iterator:
    started: list[subprocess.Popen] = []

    def run(code: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code])
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.kill()
        proc.wait(10)


def test_a_busy_process_shows_cpu_and_a_holding_one_memory(spawn) -> None:
    busy, holder = spawn(BUSY), spawn(HOLD_200_MIB)
    time.sleep(1.0)  # the holder has touched its pages
    sampler = ResourceSampler(
        [Watched("busy", pid=busy.pid), Watched("holder", pid=holder.pid)], 0.25
    ).start()
    time.sleep(2.0)
    samples = sampler.stop()
    busy_cpu = [s.cpu_percent for s in samples if s.name == "busy" and s.cpu_percent is not None]
    holder_memory = [s.memory_bytes for s in samples if s.name == "holder"]
    holder_cpu = [s.cpu_percent for s in samples if s.name == "holder" and s.cpu_percent is not None]
    # on a shared 2-core machine a spinning process gets what the others leave: compare with a sleeper
    assert busy_cpu and statistics.mean(busy_cpu) > 5, f"a spinning process uses CPU: {busy_cpu}"
    assert holder_cpu and max(holder_cpu) < 3, f"a sleeping process uses none: {holder_cpu}"
    assert min(holder_memory) > 200 * 2**20, holder_memory
    assert next(s.cpu_percent for s in samples if s.name == "busy") is None, "the first reading has no rate"


def test_a_service_is_measured_with_its_children(spawn) -> None:
    launcher = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {HOLD_200_MIB!r}])\n"
    parent = spawn(launcher + "time.sleep(30)")
    own = proc_reading(parent.pid)
    try:
        until(
            lambda: proc_reading(parent.pid),
            lambda reading: reading is None or reading[1] >= 200 * 2**20,
            timeout=20,
            what="the child's memory to show in the parent's reading",
            interval=0.2,
            seen=repr,
        )
        assert own is not None and own[1] < 100 * 2**20, "the parent alone holds little"
    finally:
        for pid in _tree(parent.pid)[1:]:  # the child, by its pid, before it is orphaned
            os.kill(pid, signal.SIGKILL)


def test_a_gone_process_yields_no_samples() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    sampler = ResourceSampler([Watched("gone", pid=proc.pid)])
    sampler.poll()
    assert sampler.samples() == []
    with pytest.raises(ValueError, match="exactly one"):
        Watched("x")


@pytest.mark.docker
def test_a_container_is_measured_from_docker_stats() -> None:
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    from harness.docker_images import ImageBuildError, resolve_base_image

    try:
        image = resolve_base_image(client)
    except ImageBuildError as exc:
        pytest.skip(str(exc))
    code = "import time\nblock = bytearray(120 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\n" + BUSY
    container = client.containers.run(
        image, ["python3", "-c", code], detach=True, labels=docker_cleanup.run_labels(), network_mode="none"
    )
    try:
        time.sleep(1.5)
        sampler = ResourceSampler([Watched("spinner", container=container.id)], 0.5).start()
        time.sleep(3.0)
        samples = sampler.stop()
    finally:
        container.remove(force=True)
        client.close()
    cpu = [s.cpu_percent for s in samples if s.cpu_percent is not None]
    assert cpu and statistics.mean(cpu) > 5, f"the spinning container uses CPU (a shared machine): {cpu}"
    assert max(s.memory_bytes for s in samples) > 120 * 2**20, [s.memory_bytes for s in samples]
