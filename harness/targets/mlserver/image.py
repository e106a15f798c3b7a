"""MLServer's Docker image, built offline exactly like the reference cluster's images.

``fixtures/docker/Dockerfile.mlserver`` on the offline base image (a build argument), a wheelhouse made
on the host with ``pip download`` for the image's Python, ``pip install --no-index`` inside, and a tag
that hashes every input (``servingbdd/mlserver:<hash>``), so an unchanged recipe reuses the image. The
helpers are :mod:`harness.docker_images`' own; only the requirements and the absence of copied sources
differ. The requirements are the local venv's (:mod:`.env`): the same MLServer, and the host's
scikit-learn/numpy/joblib so that joblib files pickled by the test process load unchanged.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import docker_images
from harness.docker_images import BuiltImage, ImageBuildError
from harness.targets.mlserver import env

KIND = "mlserver"
HTTP_PORT = 8080  # inside the container; settings.json written for a container uses these
GRPC_PORT = 8081
METRICS_PORT = 8082
MODELS_DIR = "/models"  # the model repository, bind-mounted


def dockerfile() -> Path:
    return docker_images.dockerfile_for(KIND)


def ensure_image(
    *, client=None, base_image: str | None = None, echo: Callable[[str], None] = print
) -> BuiltImage:
    """The tag of an up-to-date MLServer image, built now only if its inputs changed (~minutes cold)."""
    client = client or docker_images._docker_client()
    started = time.monotonic()
    base = base_image or docker_images.resolve_base_image(client)
    recipe = dockerfile()
    if not recipe.exists():
        raise ImageBuildError(f"{KIND} image: no Dockerfile at {recipe}")
    base_id = docker_images._image_id(client, base) or f"pull:{base}"
    for reqs in (env.requirements(), env.requirements(with_host_pins=False)):
        tag = docker_images.image_tag(
            KIND, dockerfile=recipe, reqs=reqs, base_image_id=base_id, source_dir=None
        )
        if docker_images._image_id(client, tag):
            return BuiltImage(KIND, tag, built=False, seconds=time.monotonic() - started)
        try:
            docker_images.wheelhouse(reqs)  # cached by the pins; fails here if they cannot be had together
            break
        except ImageBuildError as exc:
            if not env.unresolvable(str(exc)) or reqs == env.requirements(with_host_pins=False):
                raise
            echo(f"servingbdd: {KIND} image: {exc}; building without the host's pins")
    echo(f"servingbdd: {KIND} image: building {tag} on {base}")
    with tempfile.TemporaryDirectory(prefix=f"servingbdd-{KIND}-context-") as tmp:
        docker_images.assemble_context(Path(tmp), dockerfile=recipe, reqs=reqs, source_dir=None)
        docker_images.build_image(
            Path(tmp), tag=tag, base_image=base, labels={"servingbdd.image": KIND}, source=recipe
        )
    seconds = time.monotonic() - started
    echo(f"servingbdd: {KIND} image: built {tag} in {seconds:.0f} s")
    docker_images.prune_old_images(client, KIND)
    return BuiltImage(KIND, tag, built=True, seconds=seconds)
