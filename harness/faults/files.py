"""Corrupt a file a running service keeps on disk (e.g. the catalog's SQLite database).

The bytes are overwritten in place (same inode, same size) while the service has the file open,
as a failing disk or a stray writer would. Deterministic for a given seed, so a failing scenario
can be replayed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

SQLITE_PAGE = 4096


@dataclass(frozen=True)
class Corruption:
    path: Path
    mode: str
    offsets: tuple[int, ...]
    length: int

    def describe(self) -> str:
        offsets = list(self.offsets)
        return f"{self.mode} corruption of {self.path} at offsets {offsets} ({self.length} bytes each)"


def corrupt_file(path: Path, *, mode: str = "header", pages: int = 3, seed: int = 0) -> Corruption:
    """Overwrite part of ``path`` with garbage.

    ``header``: the first 100 bytes (an SQLite file then no longer opens: "file is not a database").
    ``pages``: ``pages`` random whole pages after the first (the database opens, reads of those pages fail
    with "database disk image is malformed").
    """
    path = Path(path)
    size = path.stat().st_size
    rng = random.Random(seed)
    if mode == "header":
        offsets, length = (0,), min(100, size)
    elif mode == "pages":
        count = max(1, size // SQLITE_PAGE)
        candidates = list(range(1, count)) or [0]
        chosen = sorted(rng.sample(candidates, min(pages, len(candidates))))
        offsets, length = tuple(p * SQLITE_PAGE for p in chosen), min(SQLITE_PAGE, size)
    else:
        raise ValueError(f"unknown corruption mode {mode!r}; expected 'header' or 'pages'")
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset in offsets:
            os.pwrite(fd, rng.randbytes(length), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Corruption(path, mode, offsets, length)
