"""Image builds from several processes at once (two test lanes starting the same cluster): one build per
kind at a time, and pruning never removes an image another build has not tagged yet. No engine needed."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness import docker_images


def _hold(cache: str, kind: str, log: str, seconds: float) -> None:
    import os

    os.environ["SERVINGBDD_CACHE_DIR"] = cache
    with docker_images._build_lock(kind):
        with open(log, "a") as out:
            out.write(f"start {time.monotonic()}\n")
        time.sleep(seconds)
        with open(log, "a") as out:
            out.write(f"end {time.monotonic()}\n")


def test_builds_of_one_kind_take_turns_across_processes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_hold, args=(str(tmp_path), "worker", str(log), 0.5)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    events = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end", "start", "end"], events  # never two inside


class _Image:
    def __init__(self, ident: str, tags: list[str], age_s: float) -> None:
        self.id = ident
        self.tags = tags
        created = datetime.now(UTC) - timedelta(seconds=age_s)
        self.attrs = {
            "Created": created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        }  # nanoseconds, as the engine


class _Images:
    def __init__(self, images: list[_Image]) -> None:
        self.images = images
        self.removed: list[str] = []

    def list(self, filters: dict) -> list[_Image]:
        return list(self.images)

    def remove(self, name: str, noprune: bool = False) -> None:
        self.removed.append(name)


class _Client:
    def __init__(self, images: list[_Image]) -> None:
        self.images = _Images(images)


def test_pruning_spares_an_untagged_image_young_enough_to_be_a_build_in_progress() -> None:
    young = _Image("sha256:young", [], age_s=5)
    old = _Image("sha256:old", [], age_s=docker_images.DANGLING_GRACE_S + 60)
    tagged = [_Image(f"sha256:t{i}", [f"servingbdd/worker:{i}"], age_s=100 + i) for i in range(6)]
    client = _Client([young, old, *tagged])
    docker_images.prune_old_images(client, "worker", keep=4)
    assert "sha256:young" not in client.images.removed
    assert "sha256:old" in client.images.removed
    assert sorted(client.images.removed) == sorted(
        ["sha256:old", "servingbdd/worker:4", "servingbdd/worker:5"]
    )


@pytest.mark.parametrize("created", ["", "not a time"])
def test_an_image_of_unknown_age_counts_as_young(created: str) -> None:
    image = _Image("x", [], 0)
    image.attrs = {"Created": created}
    assert docker_images._age_s(image) == 0.0
