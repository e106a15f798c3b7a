"""Build services' Docker images offline, and only when their inputs change.

A target describes each image with an :class:`ImageRecipe`: a Dockerfile, the Python packages it needs
and the source directories copied into it. The build context is assembled in a temporary directory: the
Dockerfile, the sources, ``requirements.txt`` and ``wheels/``, a wheelhouse made on the host
with ``pip download`` for the image's Python (3.11, manylinux x86_64). Nothing is downloaded during
the build itself (``pip install --no-index``): the offline base image's Python cannot verify the
package proxy's certificate, and there may be no registry at all.

The tag carries a content hash of every input (Dockerfile, sources, requirements, base image id),
so an unchanged tree reuses the image and a second run starts in seconds.

Environment:
  ``SERVINGBDD_BASE_IMAGE``  base image (default: the offline ``servingbdd/base:bookworm-py311`` if it
                             exists, else ``python:3.11-slim``, which the engine pulls from a registry)
  ``SERVINGBDD_CACHE_DIR``   where wheelhouses are cached (default ``<repo>/.cache``)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.backends.base import BackendError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = REPO_ROOT / "fixtures" / "docker"
OFFLINE_BASE_IMAGE = "servingbdd/base:bookworm-py311"
REGISTRY_BASE_IMAGE = "python:3.11-slim"
IMAGE_REPOSITORY = "servingbdd"
KEEP_IMAGES = 4  # per kind: older builds (of older sources) are pruned
DANGLING_GRACE_S = 3600.0  # an untagged image younger than this may be a build still to be tagged
# The image's interpreter: Python 3.11 on Debian bookworm (glibc 2.36), x86_64.
PYTHON_VERSION = "3.11"
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)), "manylinux2014_x86_64")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ImageBuildError(BackendError):
    """An image could not be built; the message names the step and the file."""


@dataclass(frozen=True)
class ImageRecipe:
    """What an image is made of. ``packages`` without a version are pinned to the host's installed
    version (what the tests use); ones with a specifier (``mlserver==1.7.1``) are taken as written."""

    kind: str  # the image is tagged servingbdd/<kind>:<hash of the inputs>
    dockerfile: Path
    packages: tuple[str, ...]
    sources: tuple[tuple[str, Path], ...] = ()  # (directory in the context, host directory)

    def resolved_dockerfile(self) -> Path:
        """The recipe's Dockerfile, or the file named by ``SERVINGBDD_DOCKERFILE_<KIND>``."""
        override = os.environ.get(f"SERVINGBDD_DOCKERFILE_{self.kind.upper()}")
        return Path(override) if override else self.dockerfile


@dataclass(frozen=True)
class BuiltImage:
    kind: str
    tag: str
    built: bool  # False when an existing image with the same inputs was reused
    seconds: float


def requirements(recipe: ImageRecipe) -> list[str]:
    """The recipe's packages, each pinned to the version the host runs unless the recipe pins it."""
    pinned = []
    for spec in recipe.packages:
        if re.search(r"[<>=!~;]", spec):
            pinned.append(spec)
            continue
        dist = spec.split("[", 1)[0]
        try:
            pinned.append(f"{spec}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(spec)
    return pinned


def cache_dir() -> Path:
    return Path(os.environ.get("SERVINGBDD_CACHE_DIR") or REPO_ROOT / ".cache")


def wheelhouse(reqs: list[str], *, cache: Path | None = None) -> Path:
    """A directory of wheels satisfying ``reqs`` for the image's Python; cached by the requirements."""
    key = _digest("\n".join([PYTHON_VERSION, *PLATFORMS, *sorted(reqs)]).encode())[:16]
    target = (cache or cache_dir()) / "wheelhouse" / key
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=target.parent))
    argv = [
        sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(partial),
        "--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311",
    ]  # fmt: skip
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    started = time.monotonic()
    result = subprocess.run([*argv, *reqs], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ImageBuildError(f"pip download of {' '.join(reqs)} failed: {_last_lines(result.stderr, 2)}")
    (partial / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (partial / ".complete").write_text("")
    if target.exists():  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.rename(target)
    log.info("wheelhouse %s ready in %.1f s", target, time.monotonic() - started)
    return target


def resolve_base_image(client) -> str:
    """The env override, else the offline base image if built, else python:3.11-slim if present."""
    chosen = os.environ.get("SERVINGBDD_BASE_IMAGE")
    if chosen:
        return chosen
    if _image_id(client, OFFLINE_BASE_IMAGE):
        return OFFLINE_BASE_IMAGE
    if _image_id(client, REGISTRY_BASE_IMAGE):
        return REGISTRY_BASE_IMAGE
    raise ImageBuildError(
        f"no base image: neither {OFFLINE_BASE_IMAGE} nor {REGISTRY_BASE_IMAGE} exists locally. "
        "Offline: run `python tools/build_base_image.py`; with a registry: "
        f"set SERVINGBDD_BASE_IMAGE={REGISTRY_BASE_IMAGE}"
    )


def image_tag(recipe: ImageRecipe, *, dockerfile: Path, reqs: list[str], base_image_id: str) -> str:
    digest = hashlib.sha256()
    kind = recipe.kind
    for part in (kind.encode(), dockerfile.read_bytes(), "\n".join(reqs).encode(), base_image_id.encode()):
        digest.update(_digest(part).encode())
    for name, root in recipe.sources:
        for path in _sources(root):
            digest.update(f"{name}/{path.relative_to(root)}".encode())
            digest.update(_digest(_read(path)).encode())
    return f"{IMAGE_REPOSITORY}/{kind}:{digest.hexdigest()[:16]}"


def ensure_image(recipe: ImageRecipe, *, client=None, base_image: str | None = None) -> BuiltImage:
    """Return the tag of an up-to-date image for ``recipe``, building it only if its inputs changed."""
    client = client or _docker_client()
    started = time.monotonic()
    kind = recipe.kind
    base = base_image or resolve_base_image(client)
    dockerfile = recipe.resolved_dockerfile()
    if not dockerfile.exists():
        raise ImageBuildError(f"{kind} image: no Dockerfile at {dockerfile}")
    reqs = requirements(recipe)
    base_id = _image_id(client, base) or f"pull:{base}"  # a pulled base: its name stands in for its id
    tag = image_tag(recipe, dockerfile=dockerfile, reqs=reqs, base_image_id=base_id)
    if _image_id(client, tag):
        return BuiltImage(kind, tag, built=False, seconds=time.monotonic() - started)
    with _build_lock(kind):  # another process building the same kind: wait, then reuse its image
        if _image_id(client, tag):
            return BuiltImage(kind, tag, built=False, seconds=time.monotonic() - started)
        with tempfile.TemporaryDirectory(prefix=f"servingbdd-{kind}-context-") as tmp:
            context = Path(tmp)
            assemble_context(context, recipe=recipe, dockerfile=dockerfile, reqs=reqs)
            build_image(
                context, tag=tag, base_image=base, labels={"servingbdd.image": kind}, source=dockerfile
            )
        seconds = time.monotonic() - started
        log.info("built %s from %s on %s in %.1f s", tag, dockerfile, base, seconds)
        prune_old_images(client, kind)
    return BuiltImage(kind, tag, built=True, seconds=seconds)


@contextlib.contextmanager
def _build_lock(kind: str) -> Iterator[None]:
    """One build of a kind at a time across processes on this machine (two test lanes starting the same
    cluster): a second build would waste minutes, and its prune could remove the first one's new image
    before it is tagged."""
    directory = cache_dir() / "image-locks"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{kind}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prune_old_images(client, kind: str, keep: int = KEEP_IMAGES) -> None:
    """Remove all but the ``keep`` newest images of ``kind`` (they differ by a small top layer);
    images still used by a container are left alone."""
    import docker.errors

    try:
        images = client.images.list(filters={"label": f"servingbdd.image={kind}"})
    except docker.errors.APIError:
        return
    images.sort(key=lambda image: image.attrs.get("Created", ""), reverse=True)
    # lost their tag to a concurrent build; a young one may be a build (of another engine user) not yet tagged
    dangling = [image for image in images if not image.tags and _age_s(image) > DANGLING_GRACE_S]
    tagged = [image for image in images if image.tags]
    for image in dangling + tagged[keep:]:
        for tag in image.tags or [image.id]:
            with contextlib.suppress(docker.errors.APIError):  # in use, or removed concurrently
                client.images.remove(tag, noprune=False)


def _age_s(image) -> float:
    created = str(image.attrs.get("Created", ""))
    try:  # "2026-11-30T11:45:12.123456789Z": the engine gives nanoseconds, Python reads microseconds
        stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", created).replace("Z", "+00:00"))
    except ValueError:
        return 0.0  # unknown: treat as young, keep it
    return time.time() - stamp.timestamp()


def assemble_context(context: Path, *, recipe: ImageRecipe, dockerfile: Path, reqs: list[str]) -> None:
    shutil.copyfile(dockerfile, context / "Dockerfile")
    (context / "requirements.txt").write_text("\n".join(reqs) + "\n")
    wheels = context / "wheels"
    wheels.mkdir()
    for wheel in wheelhouse(reqs).glob("*.whl"):
        _link_or_copy(wheel, wheels / wheel.name)
    for name, root in recipe.sources:
        for path in _sources(root):
            target = context / name / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_read(path))


def build_image(
    context: Path,
    *,
    tag: str,
    base_image: str,
    labels: dict[str, str] | None = None,
    source: Path | None = None,
    no_cache: bool = False,
) -> None:
    """``docker build`` through testcontainers; a failure becomes one :class:`ImageBuildError` line."""
    import docker.errors

    from harness.docker_cleanup import import_testcontainers

    import_testcontainers()
    from testcontainers.core.image import DockerImage

    image = DockerImage(
        path=context,
        tag=tag,
        clean_up=False,
        buildargs={"BASE_IMAGE": base_image},
        labels=labels or {},
        rm=True,
        forcerm=True,  # a failed RUN step leaves no stopped container behind
        no_cache=no_cache,
    )
    dockerfile = source or context / "Dockerfile"
    try:
        image.build()
    except docker.errors.BuildError as exc:
        build_log = list(exc.build_log or [])  # an iterator: read it once
        _remove_partial_build(image.get_docker_client().client, build_log)
        raise ImageBuildError(describe_build_failure(tag, dockerfile, build_log, str(exc))) from None
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {tag} from {dockerfile}: {exc.explanation or exc}") from None
    finally:
        image.get_docker_client().client.close()


def describe_build_failure(tag: str, dockerfile: Path, build_log, reason: str) -> str:
    """'building TAG failed at step 3/8 (Dockerfile line 12: RUN ...): <error>; output: <last lines>'."""
    step, output = None, []
    for entry in build_log or []:
        text = _ANSI.sub("", entry.get("stream") or "")
        for line in text.splitlines():
            match = re.match(r"Step (\d+/\d+) : (.*)", line.strip())
            if match:
                step, output = match.groups(), []
            elif line.strip() and not line.startswith(" ---> "):
                output.append(line.strip())
    error = _ANSI.sub("", reason).strip()
    where = ""
    if step:
        number, instruction = step
        line_no = _dockerfile_line(dockerfile, instruction)
        at = f"{dockerfile}:{line_no}" if line_no else str(dockerfile)
        where = f" at step {number} ({at}: {instruction[:120]})"
    tail = [line for line in output if line != error][-3:]
    detail = f"; output: {' | '.join(tail)}" if tail else ""
    return f"building {tag} failed{where}: {error}{detail}"


def _remove_partial_build(client, build_log) -> None:
    """Remove the untagged layer the failed build committed last (its fresh parents go with it).

    Only layers made after ``FROM`` and not taken from the cache: never the base image, never a layer
    that tagged images share (those refuse removal anyway: they have children)."""
    import docker.errors

    fresh, after_from, from_step, cached = None, False, False, False
    for entry in build_log or []:
        for line in _ANSI.sub("", entry.get("stream") or "").splitlines():
            step = re.match(r"Step \d+/\d+ : (\w+)", line.strip())
            if step:
                after_from = after_from or step.group(1).upper() == "FROM"
                from_step, cached = step.group(1).upper() == "FROM", False
                continue
            cached = cached or "Using cache" in line
            layer = re.match(r" ---> ([0-9a-f]{12})$", line.rstrip())
            if layer and after_from and not from_step and not cached:
                fresh = layer.group(1)
    if fresh:
        with contextlib.suppress(docker.errors.APIError):
            image = client.images.get(fresh)
            if not image.tags:
                client.images.remove(image.id)


def _dockerfile_line(dockerfile: Path, instruction: str) -> int | None:
    """The line of ``dockerfile`` where ``instruction`` (as the builder echoes it) starts."""
    try:
        lines = dockerfile.read_text().splitlines()
    except OSError:
        return None
    head = " ".join(instruction.split()[:2]).lower()
    for number, line in enumerate(lines, start=1):
        if " ".join(line.split()[:2]).lower() == head:
            return number
    keyword = instruction.split()[0].lower() if instruction.split() else ""
    for number, line in enumerate(lines, start=1):
        if line.strip().lower().startswith(keyword + " "):
            return number
    return None


def _sources(root: Path) -> list[Path]:
    """The package's files: no caches, no hidden files (editors' and atomic writers' temp files)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix != ".pyc"
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _read(path: Path) -> bytes:
    """A source file's bytes; empty if it vanished since it was listed (someone is editing the tree)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _last_lines(text: str, count: int) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) if lines else "(no output)"


def _image_id(client, name: str) -> str | None:
    import docker.errors

    try:
        return client.images.get(name).id
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError:
        return None


def _docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise BackendError(f"no Docker engine answers: {exc}") from None
    return client
