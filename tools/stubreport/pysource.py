"""A Python module as the scan reads it, never importing it (:class:`ModuleInfo`: its AST, imports,
top-level functions and classes), with the helpers that load it and resolve names through its imports."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import SourceError


@dataclass(eq=False)
class ModuleInfo:
    path: Path
    display: str
    module_name: str
    tree: ast.Module
    lines: list[str]
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: list[str] = field(default_factory=list)  # modules imported with ``*``
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)  # module-level values the evaluator knew
    fixtures: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)  # ``pytest_plugins``
    exports: list[str] | None = None  # ``__all__``
    step_fixtures: int = 0  # pytest-bdd step fixtures defined in this module's namespace


def qualified(node: ast.AST, imports: dict[str, str]) -> str | None:
    """``parsers.parse`` → ``pytest_bdd.parsers.parse`` using the module's imports."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in imports:
        return None
    return ".".join([imports[node.id], *reversed(parts)])


def module_name(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    parts = list(rel.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Module-level statements, including those under ``if``/``try``/``with`` (not inside functions)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If | ast.With):
            yield from top_level(stmt.body)
            yield from top_level(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                yield from top_level(block)


def _import_base(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    base = node.module or ""
    if node.level:
        anchor = name.split(".") if name else []
        if not is_package:
            anchor = anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
        base = ".".join([*anchor, base] if base else anchor)
    return base


def read_imports(module: ModuleInfo) -> None:
    is_package = module.path.name == "__init__.py"
    for node in top_level(module.tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module.imports[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    module.imports[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = _import_base(node, module.module_name, is_package)
            for alias in node.names:
                if alias.name == "*":
                    module.star_imports.append(base)
                else:
                    module.imports[alias.asname or alias.name] = (
                        f"{base}.{alias.name}" if base else alias.name
                    )


def load_module(path: Path, display: str, root: Path, name: str | None = None) -> ModuleInfo | SourceError:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=display)
    except SyntaxError as exc:
        return SourceError(display, exc.lineno or 0, f"SyntaxError: {exc.msg}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return SourceError(display, 0, f"cannot read: {exc}")
    module = ModuleInfo(path, display, name if name is not None else module_name(path, root), tree, [])
    module.lines = source.splitlines()
    read_imports(module)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            module.functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            module.classes[node.name] = node
    return module


_INTERESTING = re.compile(
    r"\b(given|when|then|step|Given|When|Then|Step|parse_type|register_type|CUSTOM_TYPES|scenarios?|"
    r"use_step_matcher|step_matcher|pytest_plugins|fixture|define_parameter_type|StepRegistry)\b"
)


def interesting(module: ModuleInfo) -> bool:
    return bool(_INTERESTING.search("\n".join(module.lines)))


def python_files(roots: Iterable[Path], skip: Callable[[Path], bool] | None = None) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        else:
            found.extend(sorted(p for p in root.rglob("*.py") if p.is_file() and not (skip and skip(p))))
    return found
