"""Shapes of Python AST nodes the step analysis reads: a callee's dotted chain, the name a target hangs
off, which part of a fixture an access reaches, a class's method; and the method names that mutate or log."""

from __future__ import annotations

import ast

MUTATORS = frozenset(
    {"append", "extend", "add", "update", "insert", "setdefault", "pop", "remove", "clear", "discard",
     "popitem", "appendleft", "extendleft", "sort", "reverse"}
)  # fmt: skip
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})


def _callee_text(root: ast.Name, chain: list[str]) -> str:
    """``world.gateway.infer`` without ``ast.unparse`` (called for every call of every step)."""
    return ".".join([root.id, *chain])


def _chain(node: ast.AST) -> tuple[ast.AST, list[str]]:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, list(reversed(attrs))


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name),
        None,
    )


def _key(node: ast.AST) -> str:
    """Which part of a fixture ``node`` reaches: ``[x]`` (``f["x"]``), ``.x`` (``f.x``) or ``*``."""
    while isinstance(node, ast.Attribute | ast.Subscript) and isinstance(
        node.value, ast.Attribute | ast.Subscript
    ):
        node = node.value
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return f"[{node.slice.value}]"
    if isinstance(node, ast.Attribute):
        return f".{node.attr}"
    return "*"


def _strip_subscript(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Subscript):
        node = node.value
    return node


def _root(node: ast.AST) -> tuple[ast.AST, str | None]:
    """The name a target hangs off (through attributes, subscripts, calls) and its first attribute."""
    first: str | None = None
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call | ast.Starred):
        if isinstance(node, ast.Attribute):
            first, node = node.attr, node.value
        elif isinstance(node, ast.Subscript):
            first, node = "[]", node.value
        elif isinstance(node, ast.Starred):
            node = node.value
        else:
            first, node = None, node.func
    return node, first
