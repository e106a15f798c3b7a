"""MLServer's Docker image, built offline exactly like the reference cluster's images.

``fixtures/docker/Dockerfile.mlserver`` on the offline base image (a build argument), a wheelhouse made
on the host with ``pip download`` for the image's Python, ``pip install --no-index`` inside, and a tag
that hashes every input (``servingbdd/mlserver:<hash>``): :mod:`harness.docker_images` builds it from the
:class:`~harness.docker_images.ImageRecipe` below. The packages are the local venv's (:mod:`.env`): the
same MLServer, and the host's scikit-learn/numpy/joblib so that joblib files pickled by the test process
load unchanged (without them when they cannot be had together with MLServer's pins).
"""

from __future__ import annotations

import functools

from harness import docker_images
from harness.docker_images import DOCKER_DIR, ImageBuildError, ImageRecipe
from harness.targets.mlserver import env

KIND = "mlserver"
HTTP_PORT = 8080  # inside the container
GRPC_PORT = 8081
METRICS_PORT = 8082
MODELS_DIR = "/models"  # the model repository, bind-mounted


@functools.cache
def recipe() -> ImageRecipe:
    reqs = env.requirements()
    try:
        docker_images.wheelhouse(reqs)  # cached by the pins; fails here if they cannot be had together
    except ImageBuildError as exc:
        if not env.unresolvable(str(exc)):
            raise
        reqs = env.requirements(with_host_pins=False)
    return ImageRecipe(KIND, DOCKER_DIR / "Dockerfile.mlserver", tuple(reqs))
