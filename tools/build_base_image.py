"""Build the offline base image for the cluster's Docker images: Debian bookworm + Python 3.11.

Where no registry can be pulled from, ``FROM python:3.11-slim`` cannot work. This tool makes an
equivalent base with ``debootstrap`` (Debian packages only), imports it with ``docker import``, and
tags it ``servingbdd/base:bookworm-py311``. The images in ``fixtures/docker`` take it as the build
argument ``BASE_IMAGE``.

    python tools/build_base_image.py            # skip if the image exists
    python tools/build_base_image.py --force    # rebuild

Needs root (debootstrap) and a Docker engine. Errors are one line on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_NAME = "servingbdd/base:bookworm-py311"
DEFAULT_SUITE = "bookworm"
MIRROR_ENV = "SERVINGBDD_DEBIAN_MIRROR"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What `docker import` records as image config; mirrors python:3.11-slim where it matters.
IMAGE_CHANGES = (
    "ENV LANG=C.UTF-8",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["python3"]',
)


class BuildError(Exception):
    """A step failed; the message is the one line shown to the user."""


def progress(message: str) -> None:
    print(f"[base-image] {message}", flush=True)


def run(argv: list[str], *, step: str, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    except FileNotFoundError as exc:
        raise BuildError(f"{step}: command not found: {exc.filename}") from None
    if result.returncode != 0:
        raise BuildError(
            f"{step} failed (exit {result.returncode}): {last_line(result.stderr or result.stdout)}"
        )
    return result


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def check_engine() -> None:
    if shutil.which("docker") is None:
        raise BuildError("no `docker` command on PATH: install the Docker CLI")
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildError(f"no Docker engine answers: {last_line(result.stderr)}")


def image_id(name: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    if shutil.which("apt-get") is None:
        raise BuildError("debootstrap is missing and there is no apt-get to install it")
    progress("installing debootstrap with apt-get")
    run(
        ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
        step="apt-get install debootstrap",
    )


def debootstrap(rootfs: Path, *, suite: str, mirror: str, packages: tuple[str, ...] = PACKAGES) -> None:
    progress(f"debootstrap {suite} ({', '.join(packages)}) from {mirror}; a minute or two")
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(rootfs), mirror]
    run(argv, step="debootstrap")


def trim_and_link(rootfs: Path) -> None:
    """Drop caches, and make `python` mean python3 as it does in python:3.11-slim."""
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        target = rootfs / cache
        if target.is_dir():
            for child in target.iterdir():
                if child.is_file() or child.is_symlink():
                    child.unlink()
                elif child.is_dir() and child.name != "partial":
                    shutil.rmtree(child, ignore_errors=True)
    link = rootfs / "usr/local/bin/python"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/usr/bin/python3")


def import_image(rootfs: Path, name: str, changes: tuple[str, ...] = IMAGE_CHANGES) -> str:
    progress(f"importing the root filesystem as {name}")
    argv = ["docker", "import"]
    for change in changes:
        argv += ["--change", change]
    argv += ["-", name]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        imported = subprocess.run(argv, stdin=tar.stdout, capture_output=True, text=True)
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar_status = tar.wait()
    if tar_status != 0:
        raise BuildError(f"tar of {rootfs} failed (exit {tar_status})")
    if imported.returncode != 0:
        raise BuildError(f"docker import failed: {last_line(imported.stderr)}")
    return imported.stdout.strip()


def check_python(name: str) -> str:
    result = run(
        ["docker", "run", "--rm", "--network", "none", name, "python", "--version"], step="smoke test"
    )
    return result.stdout.strip() or result.stderr.strip()


def build_rootfs_image(
    name: str,
    *,
    packages: tuple[str, ...],
    changes: tuple[str, ...],
    smoke_test: Callable[[str], str],
    finish: Callable[[Path], None] | None = None,
    force: bool,
    suite: str,
    mirror: str,
    workdir: Path | None,
) -> str:
    """debootstrap ``packages``, trim, optionally ``finish`` the tree, import it as ``name``, smoke-test it.
    Skipped when the image exists (unless ``force``). Shared by this tool and build_postgres_image."""
    check_engine()
    existing = image_id(name)
    if existing and not force:
        progress(f"{name} exists ({existing[:19]}); nothing to do (--force rebuilds)")
        return existing
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root: run this tool as root (or with sudo)")
    ensure_debootstrap()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="servingbdd-rootfs-", dir=workdir) as tmp:
        rootfs = Path(tmp) / "rootfs"
        debootstrap(rootfs, suite=suite, mirror=mirror, packages=packages)
        progress(f"debootstrap done in {time.monotonic() - started:.0f} s")
        trim_and_link(rootfs)
        if finish is not None:
            finish(rootfs)
        new_id = import_image(rootfs, name, changes=changes)
    progress(f"smoke test: {smoke_test(name)}")
    progress(f"built {name} ({new_id[:19]}) in {time.monotonic() - started:.0f} s")
    return new_id


def build(name: str, *, force: bool, suite: str, mirror: str, workdir: Path | None) -> str:
    return build_rootfs_image(
        name,
        packages=PACKAGES,
        changes=IMAGE_CHANGES,
        smoke_test=check_python,
        force=force,
        suite=suite,
        mirror=mirror,
        workdir=workdir,
    )


def machine_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror this machine's apt uses (``/etc/apt/sources.list`` and ``sources.list.d``, one-line
    and deb822 formats), unless ``SERVINGBDD_DEBIAN_MIRROR`` names another: the offline builds follow
    whatever mirror or proxy the machine is configured with; no host is written in the code."""
    chosen = os.environ.get(MIRROR_ENV, "").strip()
    if chosen:
        return chosen
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(f for f in source.iterdir() if f.suffix in (".list", ".sources"))
        elif source.is_file():
            files.append(source)
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for uri in _deb_uris(text, deb822=path.suffix == ".sources"):
            if not uri.rstrip("/").endswith("-security"):
                return uri
    raise BuildError(
        f"no Debian mirror found in the apt configuration ({', '.join(map(str, sources))}); "
        f"set {MIRROR_ENV}=<mirror URL>"
    )


def _deb_uris(text: str, *, deb822: bool) -> list[str]:
    """The URIs of binary package sources in one apt sources file."""
    uris = []
    if deb822:
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line and not line.startswith("#") and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                uris += fields.get("uris", "").split()
        return uris
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        rest = words[1:]
        if rest and rest[0].startswith("["):  # "deb [arch=amd64 signed-by=...] URI suite components"
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if rest:
            uris.append(rest[0])
    return uris


def run_cli(argv: list[str] | None, *, tool: str, description: str, default_name: str, build_fn) -> int:
    """The command line both image tools share: --name --force --suite --mirror --workdir; one-line errors."""
    parser = argparse.ArgumentParser(prog=tool, description=description)
    parser.add_argument("--name", default=default_name, help=f"image name (default {default_name})")
    parser.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    parser.add_argument("--suite", default=DEFAULT_SUITE, help=f"Debian suite (default {DEFAULT_SUITE})")
    parser.add_argument(
        "--mirror",
        default=None,
        help=f"Debian mirror (default: ${MIRROR_ENV}, else the machine's apt sources)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where to unpack the root filesystem")
    args = parser.parse_args(argv)
    try:
        mirror = args.mirror or machine_mirror()
        build_fn(args.name, force=args.force, suite=args.suite, mirror=mirror, workdir=args.workdir)
    except BuildError as exc:
        print(f"{tool}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{tool}: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        argv,
        tool="build_base_image",
        description=__doc__.splitlines()[0],
        default_name=DEFAULT_NAME,
        build_fn=build,
    )


if __name__ == "__main__":
    sys.exit(main())
