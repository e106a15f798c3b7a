"""Build the offline PostgreSQL image the docker backend runs the catalog database in.

The same way as the base image (:mod:`tools.build_base_image`, whose helpers this reuses): ``debootstrap``
Debian bookworm with ``postgresql-15`` (debootstrap resolves its dependencies), add a small entrypoint,
``docker import`` the tree as ``servingbdd/postgres:15``. No registry is needed.

The entrypoint (``servingbdd-postgres``, run as the ``postgres`` user) creates a cluster on the first
start of a container (``initdb``, trust authentication for every client: a throwaway database on the
scenario's private network) and then execs ``postgres`` in the foreground with its arguments, so a
``docker kill`` is a crash of the postmaster and a ``docker start`` of the same container brings the
same data back after crash recovery.

    python tools/build_postgres_image.py            # skip if the image exists
    python tools/build_postgres_image.py --force    # rebuild

Needs root (debootstrap) and a Docker engine. Errors are one line on stderr, exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.build_base_image import build_rootfs_image, run, run_cli

DEFAULT_NAME = "servingbdd/postgres:15"
PG_MAJOR = "15"
PACKAGES = (f"postgresql-{PG_MAJOR}",)
PGDATA = "/var/lib/postgresql/data"
ENTRYPOINT = "/usr/local/bin/servingbdd-postgres"
IMAGE_CHANGES = (
    "ENV LANG=C.UTF-8",
    f"ENV PATH=/usr/lib/postgresql/{PG_MAJOR}/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    f"ENV PGDATA={PGDATA}",
    "USER postgres",
    "EXPOSE 5432",
    f'ENTRYPOINT ["{ENTRYPOINT}"]',
)
ENTRYPOINT_SCRIPT = """#!/bin/sh
# servingbdd: a throwaway PostgreSQL for tests. First start: initdb, trusting every client (the
# container lives on a private scenario network). Then postgres in the foreground (PID 1), so that
# `docker kill` crashes it and `docker start` recovers the same data.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    printf 'host all all 0.0.0.0/0 trust\\nhost all all ::/0 trust\\n' >> "$PGDATA/pg_hba.conf"
    echo "servingbdd-postgres: initialised $PGDATA" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off "$@"
"""


# Not needed by a test server: the cluster the package's postinst made (the entrypoint makes its own),
# the JIT (LLVM, ~130 MB; the server runs with jit=off), message translations and locale sources
# (the cluster uses the C locale). About half of the image.
UNNEEDED = (
    f"var/lib/postgresql/{PG_MAJOR}",
    f"etc/postgresql/{PG_MAJOR}",
    "usr/lib/x86_64-linux-gnu/libLLVM-*",
    f"usr/lib/postgresql/{PG_MAJOR}/lib/llvmjit*",
    f"usr/lib/postgresql/{PG_MAJOR}/lib/bitcode",
    "usr/share/locale",
    "usr/share/i18n",
)


def finish_rootfs(rootfs: Path) -> None:
    """The entrypoint script; drop what a test server does not need (:data:`UNNEEDED`)."""
    script = rootfs / ENTRYPOINT.lstrip("/")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(ENTRYPOINT_SCRIPT)
    script.chmod(0o755)
    for pattern in UNNEEDED:
        for path in rootfs.glob(pattern):
            run(["rm", "-rf", str(path)], step=f"removing /{path.relative_to(rootfs)}")


def check_postgres(name: str) -> str:
    result = run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "postgres", name, "--version"],
        step="smoke test",
    )
    return result.stdout.strip() or result.stderr.strip()


def build(name: str, *, force: bool, suite: str, mirror: str, workdir: Path | None) -> str:
    return build_rootfs_image(
        name,
        packages=PACKAGES,
        changes=IMAGE_CHANGES,
        smoke_test=check_postgres,
        finish=finish_rootfs,
        force=force,
        suite=suite,
        mirror=mirror,
        workdir=workdir,
    )


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        argv,
        tool="build_postgres_image",
        description=__doc__.splitlines()[0],
        default_name=DEFAULT_NAME,
        build_fn=build,
    )


if __name__ == "__main__":
    sys.exit(main())
