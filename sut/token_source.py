"""Where a service gets a secret token: a file it re-reads when it changes, or a fixed value (environment).

A token never travels on a command line (``ps`` shows command lines to every user of the machine): the
services take a file path or an environment variable. A file is re-read whenever its identity (inode,
size, modification time) changes, so a token can be rotated by rewriting the file, without a restart.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

MAX_TOKEN_BYTES = 4096


class TokenError(RuntimeError):
    """The token cannot be read; the message says which file and why (never the token)."""


@dataclass
class TokenSource:
    """A token from ``path`` (re-read on change) or the fixed ``value``; exactly one of them is set."""

    path: Path | None = None
    value: str | None = None
    _stamp: tuple[int, int, int] | None = None
    _cached: str | None = None

    @classmethod
    def from_options(cls, path: str | Path | None, env_var: str) -> TokenSource | None:
        """The file when one is named, else the environment variable; None when neither is set."""
        if path:
            source = cls(path=Path(path))
            source.read()  # fail at start-up, not at the first request
            return source
        value = os.environ.get(env_var, "").strip()
        return cls(value=value) if value else None

    def read(self) -> str:
        """The current token; a file is read again only when it changed since the last read."""
        if self.path is None:
            if not self.value:
                raise TokenError("empty token")
            return self.value
        try:
            st = self.path.stat()
        except OSError as exc:
            if self._cached is not None:  # mid-rewrite by a non-atomic writer: keep the last good one
                return self._cached
            raise TokenError(f"cannot read token file {self.path}: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp or self._cached is None:
            token = _read_file(self.path)
            if token is None:
                if self._cached is not None:
                    return self._cached
                raise TokenError(f"token file {self.path} is empty or unreadable")
            self._stamp, self._cached = stamp, token
        return self._cached

    @property
    def rotatable(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        return f"file {self.path}" if self.path is not None else "environment"


def _read_file(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_TOKEN_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_TOKEN_BYTES:
        return None
    token = raw.decode("utf-8", errors="replace").strip()
    return token or None


def write_token_file(path: Path, token: str) -> Path:
    """Write ``token`` to ``path`` atomically (temp file + rename) at mode 0600, its directory 0700.

    Readers that hold the old file keep reading it whole; new reads see the new token whole."""
    if not token or token != token.strip():
        raise ValueError("a token must be non-empty, without surrounding whitespace")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def new_token() -> str:
    return secrets.token_urlsafe(24)
