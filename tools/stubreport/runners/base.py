"""What every runner model hands to the report: the suite as that runner sees it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..matching import Entry, StepIndex
from ..model import FeatureStep, SourceError, StepFunction

#: Directories no runner collects from (virtual environments, build output, VCS).
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__", "build",
     "dist", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", "target", ".eggs"}
)  # fmt: skip


def skipped(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(p in SKIP_DIRS or (p.startswith(".") and p not in (".", "..")) for p in parts[:-1])


def walk(root: Path, suffix: str) -> list[Path]:
    """Files under ``root`` ending in ``suffix``, sorted, outside the skipped directories."""
    if root.is_file():
        return [root] if root.name.endswith(suffix) else []
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        found.extend(
            Path(dirpath) / f
            for f in sorted(filenames)
            if f.endswith(suffix) and (Path(dirpath) / f).is_file()
        )
    return found


def display(path: Path, root: Path) -> str:
    text, base = str(path), str(root).rstrip(os.sep) + os.sep
    if text.startswith(base):  # the common case, without relpath's work
        return text[len(base) :].replace(os.sep, "/")
    try:
        return Path(os.path.relpath(path, root)).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:
        return path.as_posix()


@dataclass
class Resolution:
    """What the runner does with one feature step."""

    runs: list[StepFunction]  # the definition(s) it would run (several only when ambiguous)
    matches: list[Entry]  # every pattern that matches, in registration order
    ambiguous: bool = False
    note: str = ""  # e.g. "shadows ..."
    chosen: list[Entry] = field(default_factory=list)  # the registration(s) that run


@dataclass
class Suite:
    runner: str
    root: Path
    feature_paths: list[str]
    step_paths: list[str]
    steps: list[FeatureStep]
    functions: list[StepFunction]
    index: StepIndex
    resolve: Callable[[FeatureStep], Resolution]
    errors: list[SourceError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: problems of the definitions themselves, as the runner reports them (behave: AmbiguousStep)
    definition_conflicts: list[tuple[StepFunction, str, list[StepFunction]]] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)  # pytest-bdd: feature files no test binds
    snippet: Callable[[FeatureStep], str] | None = None
    facts: Any = None  # classify.SuiteFacts (Python suites)
    classification: Any = None  # classify.Resolution (for --explain)
    counts_as_runner: dict[str, int] = field(default_factory=dict)  # the runner's own unit of count
    never_imported: set[str] = field(default_factory=set)  # step files nothing imports (pytest-bdd)
