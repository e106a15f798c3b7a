"""The reference cluster's services as backend-neutral :class:`ServiceSpec` s (gateway, worker, trainer).

The command lines come from :mod:`sut.launcher` (shared with ``sut up``), so the CLI, the harness and the
Dockerfiles cannot disagree about how a service is started. Tokens go into the environment, never onto a
command line visible in ``ps``. Docker images are built from ``fixtures/docker/Dockerfile.<kind>`` with the
``sut`` package source and the packages each service imports.

``SERVINGBDD_SUT_PYTHONPATH`` names directories (separated like ``PYTHONPATH``) put first on every
service's ``PYTHONPATH`` (bind-mounted into containers): a ``sitecustomize.py`` there patches the cluster
at start-up. ``tests/mutants/`` uses it to prove that the features fail on a broken cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

import sut
from harness.backends.base import Mount, Placement, ServiceSpec
from harness.docker_images import DOCKER_DIR, ImageRecipe
from harness.targets.reference.secrets import CONTAINER_DIR, JOIN_TOKEN
from harness.targets.reference.spec import ClusterSpec
from sut.launcher import gateway_command, trainer_command, worker_command

SRC_ROOT = Path(sut.__file__).resolve().parent.parent  # so `python -m sut.*` imports this checkout
SUT_DIR = SRC_ROOT / "sut"
SUT_PYTHONPATH_ENV = "SERVINGBDD_SUT_PYTHONPATH"
ARTIFACTS = "/artifacts"
PATCH_DIR = "/opt/servingbdd-patch"  # the SERVINGBDD_SUT_PYTHONPATH directories are mounted at PATCH_DIR/<i>
PORTS = {"gateway": 8000, "worker": 8001, "trainer": 8002}  # inside containers

_COMMON = ("fastapi", "uvicorn", "httpx", "numpy", "prometheus-client")
IMAGES = {
    # psycopg: a PostgreSQL catalog is an option
    "gateway": ImageRecipe(
        "gateway", DOCKER_DIR / "Dockerfile.gateway", (*_COMMON, "psycopg[binary]"), (("sut", SUT_DIR),)
    ),
    # no scikit-learn or onnx: artifacts are built on the host and bind-mounted
    "worker": ImageRecipe(
        "worker", DOCKER_DIR / "Dockerfile.worker", (*_COMMON, "onnxruntime"), (("sut", SUT_DIR),)
    ),
    # the drift monitor / retrainer: trains (scikit-learn), exports (skl2onnx, onnx), checks (onnxruntime)
    "trainer": ImageRecipe(
        "trainer",
        DOCKER_DIR / "Dockerfile.trainer",
        (*_COMMON, "onnxruntime", "scipy", "scikit-learn", "skl2onnx", "onnx"),
        (("sut", SUT_DIR),),
    ),
}  # fmt: skip


def _patch_dirs() -> list[Path]:
    """The directories of ``SERVINGBDD_SUT_PYTHONPATH`` (separated like ``PYTHONPATH``), in order."""
    extra = os.environ.get(SUT_PYTHONPATH_ENV, "")
    return [Path(part.strip()).resolve() for part in extra.split(os.pathsep) if part.strip()]


def _inside(index: int) -> str:
    return f"{PATCH_DIR}/{index}"


def _env(spec: ClusterSpec, *, token: bool) -> dict[str, str]:
    env = dict(spec.env)
    if token:
        env["SUT_ADMIN_TOKEN"] = spec.admin_token
    return env


def _mounts(spec: ClusterSpec, artifacts_mode: str, secrets: Path | None = None) -> list[Mount]:
    """The artifacts, the patch directory if any, and the token files (re-read by the services when they
    change, so rewriting one rotates its token), read-only."""
    assert spec.artifact_root is not None
    mounts = [Mount(Path(spec.artifact_root), ARTIFACTS, artifacts_mode)]
    if secrets is not None:
        mounts.append(Mount(secrets, str(CONTAINER_DIR), "ro"))
    mounts += [Mount(patch, _inside(index), "ro") for index, patch in enumerate(_patch_dirs())]
    return mounts


def _python_path(placement: Placement) -> list[str]:
    """``env PYTHONPATH=...`` before the command: a local process imports this checkout (a container, the
    image's /app); the patch directories come first."""
    patches = _patch_dirs()
    if placement.python == "python":  # in a container
        parts = [*(_inside(index) for index in range(len(patches))), "/app"]
    else:
        parts = [*(str(patch) for patch in patches), str(SRC_ROOT)]
    return ["env", f"PYTHONPATH={os.pathsep.join(parts)}"]


def gateway(spec: ClusterSpec, secrets: Path) -> ServiceSpec:
    """The gateway: the admin token in its environment, the join token in a file (``secrets``)."""
    assert spec.artifact_root is not None
    root = Path(spec.artifact_root)

    def command(p: Placement) -> list[str]:
        return [*_python_path(p), *gateway_command(
            port=p.port(),
            data_dir=Path(p.data_dir),
            artifact_root=Path(p.path(root)),
            join_token_file=Path(p.path(secrets / JOIN_TOKEN)),
            join_token_overlap=spec.join_token_overlap,
            host=p.bind_host,
            db=None if spec.db == "sqlite" else spec.db,
            heartbeat_interval=spec.heartbeat_interval,
            upstream_timeout=spec.upstream_timeout,
            python=p.python,
        )]  # fmt: skip

    service = ServiceSpec(
        "gateway",
        "gateway",
        command,
        image=IMAGES["gateway"],
        ports={"http": PORTS["gateway"]},
        env=_env(spec, token=True),
        mounts=_mounts(spec, "ro", secrets),
        data_dir=True,
    )
    return service


def worker(
    spec: ClusterSpec,
    name: str,
    secrets: Path,
    *,
    token_file: str | None = JOIN_TOKEN,
    kind: str = "worker",
    pool: str | None = None,
    startup_timeout: float | None = None,
) -> ServiceSpec:
    """A worker presenting the join token in ``secrets/token_file`` (None: none at all). ``kind``
    "stranger": a real worker with someone else's credential, not one of the cluster's workers."""
    assert spec.artifact_root is not None
    root = Path(spec.artifact_root)

    def command(p: Placement) -> list[str]:
        return [*_python_path(p), *worker_command(
            port=p.port(),
            gateway_url=p.url_of("gateway"),  # through the link's fault proxy with fault_links
            artifact_root=Path(p.path(root)),
            name=name,
            host=p.bind_host,
            advertise_url=p.reached_by("gateway"),
            memory_budget=spec.memory_budget,
            join_token_file=Path(p.path(secrets / token_file)) if token_file else None,
            pool=pool,
            python=p.python,
        )]  # fmt: skip

    service = ServiceSpec(
        name,
        kind,
        command,
        image=IMAGES["worker"],
        ports={"http": PORTS["worker"]},
        env=_env(spec, token=False),
        mounts=_mounts(spec, "ro", secrets),
        links=("gateway",) if spec.fault_links and kind == "worker" else (),
        startup_timeout=startup_timeout,
    )
    return service


def trainer(spec: ClusterSpec) -> ServiceSpec:
    assert spec.artifact_root is not None and spec.trainer is not None
    root, options = Path(spec.artifact_root), spec.trainer

    def command(p: Placement) -> list[str]:
        return [*_python_path(p), *trainer_command(
            port=p.port(),
            gateway_url=p.url_of("gateway"),
            artifact_root=Path(p.path(root)),  # SUT_ADMIN_TOKEN in the environment
            host=p.bind_host,
            data_dir=Path(p.data_dir),
            interval=options.interval,
            window=options.window,
            min_window=options.min_window,
            psi=options.psi,
            ks_p=options.ks_p,
            holdout=options.holdout,
            python=p.python,
        )]  # fmt: skip

    # Read-write artifacts: the trainer exports retrained versions there, which the workers then load.
    service = ServiceSpec(
        "trainer",
        "trainer",
        command,
        image=IMAGES["trainer"],
        ports={"http": PORTS["trainer"]},
        env=_env(spec, token=True),
        mounts=_mounts(spec, "rw"),
        data_dir=True,
    )
    return service
