"""The core of the harness knows no particular server: only ``harness/targets/reference/`` imports the
reference cluster (``sut``). Checked on the source (``ast``), so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "harness"
ALLOWED = HARNESS / "targets" / "reference"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, anywhere in it (top level, functions, TYPE_CHECKING blocks)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # ``from sut import x`` is caught by its module; ``from . import`` stays in the package
    return found


def is_sut(module: str) -> bool:
    return module == "sut" or module.startswith("sut.")


def test_the_scanner_sees_every_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sut\n"
        "import os, sut.gateway as gw\n"
        "from sut.launcher import worker_command\n"
        "def later():\n"
        "    from sut import demo_models\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import sut.trainer\n"
        "import sutra\n"
        "from .sut import nothing\n"
    )
    hits = [(line, m) for line, m in imported_modules(sample) if is_sut(m)]
    assert hits == [(1, "sut"), (2, "sut.gateway"), (3, "sut.launcher"), (5, "sut"), (8, "sut.trainer")]


def test_only_the_reference_target_imports_sut() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted(HARNESS.rglob("*.py"))
        if not path.is_relative_to(ALLOWED)
        for line, module in imported_modules(path)
        if is_sut(module)
    ]
    assert offenders == [], "\n".join(offenders)


def test_the_reference_target_does_import_sut() -> None:
    """The check above is not vacuous: the reference package is where the imports are."""
    assert any(is_sut(m) for p in ALLOWED.rglob("*.py") for _, m in imported_modules(p))


def _project_module_file(module: str) -> Path | None:
    """The source file of a module of this project outside ``harness/`` (``fixtures.data``, ...)."""
    parts = module.split(".")
    if parts[0] in ("harness", "sut") or not (ROOT / parts[0]).is_dir():
        return None
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts) / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_nothing_outside_the_reference_target_reaches_sut_through_the_projects_own_modules() -> None:
    """Through ``fixtures`` (or any other package of this project), one level deep: a harness module that
    imports a project module importing ``sut`` needs the reference cluster installed all the same."""
    offenders = []
    for path in sorted(HARNESS.rglob("*.py")):
        if path.is_relative_to(ALLOWED):
            continue
        for line, module in imported_modules(path):
            source = _project_module_file(module)
            if source is None:
                continue
            for inner_line, inner in imported_modules(source):
                if is_sut(inner):
                    offenders.append(
                        f"{path.relative_to(ROOT)}:{line}: imports {module}, "
                        f"whose {source.relative_to(ROOT)}:{inner_line} imports {inner}"
                    )
    assert offenders == [], "\n".join(offenders)
