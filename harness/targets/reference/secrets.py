"""The tokens a backend hands to its services, as files in one scenario directory (mode 0700, files 0600).

Services read tokens from files named on their command line (``--join-token-file``), never from the
command line itself: ``ps`` shows command lines to every user. The local backend points the services at
this directory; the docker backend bind-mounts it read-only at ``/run/secrets``. Rewriting a file rotates
its token: the services re-read it when it changes (``sut.token_source``).
"""

from __future__ import annotations

from pathlib import Path

from sut.token_source import write_token_file

JOIN_TOKEN = "join_token"  # the cluster's join token; a stranger's own token goes in "<name>.join_token"
CONTAINER_DIR = Path("/run/secrets")


class SecretFiles:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def write(self, name: str, token: str) -> Path:
        return write_token_file(self.path(name), token)

    def path(self, name: str) -> Path:
        return self.root / name

    @staticmethod
    def in_container(name: str) -> Path:
        return CONTAINER_DIR / name
