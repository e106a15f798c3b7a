"""Fixtures for the stub report's tests: a private copy of the corpus (plus the broken Python file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The corpus copied to a temp dir that is also the current dir (as ``tools/stub_report.py`` expects).

    ``steps/broken_py.txt`` becomes ``steps/broken.py`` here: a real syntax error kept out of the source
    tree so that linters and test collection never trip over it.
    """
    root = tmp_path / "project"
    shutil.copytree(CORPUS, root)
    (root / "steps" / "broken_py.txt").rename(root / "steps" / "broken.py")
    monkeypatch.chdir(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # never the user's own cache
    return root
