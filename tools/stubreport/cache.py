"""A content-addressed cache of the two slow parts: parsed feature files and pattern-vs-text matches.

Features are keyed by the file's display path and bytes plus the parser's version; matches by the
pattern's family, parser, text and custom types plus the step text. A stale entry can never be
served: an edit simply misses. One pickle file under ``$XDG_CACHE_HOME/stub_report`` (default
``~/.cache/stub_report``); ``--no-cache`` turns it off. A cache that cannot be read or written is
ignored (the report is then just slower).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 1


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stub_report"


def _parser_version() -> str:
    try:
        return metadata.version("gherkin-official")
    except metadata.PackageNotFoundError:
        return "unknown"


class FeatureCache:
    def __init__(self, directory: Path) -> None:
        self.file = directory / f"features-v{SCHEMA}.pickle"
        self.salt = f"{SCHEMA}:{_parser_version()}".encode()
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.dirty = False
        try:
            with self.file.open("rb") as fh:
                loaded = pickle.load(fh)
            if isinstance(loaded, dict):
                self.entries = loaded
        except Exception:  # missing, truncated or from another version: start empty
            self.entries = {}

    def key(self, display: str, content: bytes) -> str:
        return hashlib.blake2b(self.salt + display.encode() + b"\0" + content, digest_size=20).hexdigest()

    def get(self, key: str) -> Any | None:
        value = self.entries.get(key)
        if value is not None:
            self.used.add(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self.entries[key] = value
        self.used.add(key)
        self.dirty = True

    def match_key(self, pattern_key: str, text: str) -> str:
        return "m\0" + pattern_key + "\0" + text

    def save(self) -> None:
        """Keep only the entries this run used (bounded size); write atomically."""
        if not self.dirty and len(self.used) == len(self.entries):
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            kept = {k: v for k, v in self.entries.items() if k in self.used}
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(kept, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.file)
        except OSError:
            pass
