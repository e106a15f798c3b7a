"""Fixtures for the stub report's tests: a private copy of one corpus suite per test.

The corpora are suites in their own right (behave, pytest-bdd, Rust, our registry): pytest must not
collect their test modules, and the registry's broken Python file is kept as ``.txt`` so that linters
and collection never trip over it (it becomes ``.py`` in the copy).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
collect_ignore_glob = ["corpus/*"]


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """``corpus("behave")``: a copy of that corpus suite in a temp dir (the current dir is elsewhere)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the report must not depend on where it runs from

    def copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(CORPUS / name, root)
        for broken in root.rglob("*_py.txt"):
            broken.rename(broken.with_name(broken.name.replace("_py.txt", ".py")))
        return root

    return copy
