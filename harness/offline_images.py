"""Docker images made before the first docker scenario, with progress shown.

On a machine with an engine but no registry (like these), ``pytest --gherkin`` must work as it is: the
offline base image and the PostgreSQL image are built with the repository's tools when missing (about a
minute each, once), then the service images (content-hashed: rebuilt only when their inputs change).
Done at session start rather than inside the first scenario, where the runner would hide the progress
and charge minutes to one scenario's timings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness import docker_images, postgres_container
from harness.docker_images import ImageBuildError, ImageRecipe

TOOLS = Path(__file__).resolve().parent.parent / "tools"
#: image -> the tool that builds it offline
OFFLINE_IMAGES = {
    docker_images.OFFLINE_BASE_IMAGE: "build_base_image.py",
    postgres_container.IMAGE: "build_postgres_image.py",
}


def prepare(echo: Callable[[str], None], recipes: list[ImageRecipe]) -> None:
    """Build whatever docker scenarios need and is missing (the base images, then ``recipes``); ``echo``
    shows one line per stage."""
    client = docker_images._docker_client()
    for image, tool in OFFLINE_IMAGES.items():
        if image == docker_images.OFFLINE_BASE_IMAGE and os.environ.get("SERVINGBDD_BASE_IMAGE"):
            continue  # the user chose a base image (e.g. python:3.11-slim from a registry)
        if docker_images._image_id(client, image) is None:
            _run_tool(image, tool, echo)
    for recipe in recipes:
        started = time.monotonic()
        echo(f"servingbdd: {recipe.kind} image: checking (built only when its inputs changed)")
        built = docker_images.ensure_image(recipe, client=client)
        if built.built:
            echo(f"servingbdd: {recipe.kind} image: built {built.tag} in {time.monotonic() - started:.0f} s")


def _run_tool(image: str, tool: str, echo: Callable[[str], None]) -> None:
    script = TOOLS / tool
    if not script.exists():
        raise ImageBuildError(f"image {image} is missing and {script} is not there to build it")
    echo(f"servingbdd: image {image} is missing: building it offline with tools/{tool} (once)")
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        echo(f"  {line.rstrip()}")
    if proc.wait() != 0:
        raise ImageBuildError(
            f"building {image} with tools/{tool} failed (exit {proc.returncode}); see above"
        )
