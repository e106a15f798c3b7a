"""Find a Python module's source file without importing anything."""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from .base import display


def module_file(dotted: str, roots: Iterable[Path]) -> Path | None:
    parts = dotted.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def by_names(modules: Iterable[Any], root: Path) -> dict[str, Any]:
    """Modules by their import name and by their dotted path from the suite root (``features.steps.core``
    and ``core`` are the same file when behave's steps dir is on the path)."""
    found: dict[str, Any] = {}
    for module in modules:
        found.setdefault(module.module_name, module)
        try:
            rel = module.path.resolve().relative_to(root.resolve()).with_suffix("")
        except ValueError:
            continue
        parts = list(rel.parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        found.setdefault(".".join(parts), module)
    return found


def product_module(dotted: str, roots: Iterable[Path], test_dirs: Iterable[Path]) -> bool:
    """A module of the suite that is not test code: the product (calling it is real)."""
    found = longest_module(dotted, roots)
    if found is None:
        return False
    path = found[1].resolve()
    return not any(path.is_relative_to(d.resolve()) for d in test_dirs)


def longest_module(dotted: str, roots: Iterable[Path]) -> tuple[str, Path] | None:
    """The longest dotted prefix of ``dotted`` that is a module under ``roots``."""
    roots = list(roots)
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        found = module_file(name, roots)
        if found is not None:
            return name, found
    return None


@cache
def installed_roots() -> tuple[Path, ...]:
    """Where installed libraries live (step libraries installed from an index are followed too)."""
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    paths |= {p for p in sys.path if p.endswith("site-packages")}
    return tuple(Path(p) for p in sorted(paths) if Path(p).is_dir())


def show(path: Path, suite_root: Path) -> str:
    """Display path: relative to the suite root, or ``site-packages/...`` for installed libraries."""
    for root in installed_roots():
        try:
            return "site-packages/" + path.relative_to(root).as_posix()
        except ValueError:
            continue
    return display(path, suite_root)
