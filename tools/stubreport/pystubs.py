"""Python stubs: a step body that cannot pass (nothing but ``pass``, ``...``, a docstring or placeholder
output, a TODO, or a pending marker first). The rules are in :mod:`.classify`'s docstring."""

from __future__ import annotations

import ast
import re

from .model import StepFunction
from .pynodes import LOG_METHODS, _callee_text, _chain
from .pysource import ModuleInfo, qualified
from .rules import Rules

_TODO = re.compile(r"\b(TODO|FIXME|XXX|TBD)\b")


# -- stubs --------------------------------------------------------------------------------------------
def _is_trivial(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))


def _is_placeholder_output(stmt: ast.stmt) -> bool:
    """``print("placeholder")`` / ``log.info(...)`` before a pending marker."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    if isinstance(func, ast.Name):
        return func.id == "print"
    return isinstance(func, ast.Attribute) and func.attr in LOG_METHODS


def _pending_marker(stmt: ast.stmt, module: ModuleInfo, rules: Rules) -> str | None:
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        name = exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", "")
        text = ast.unparse(stmt.exc)
        if name in rules.pending_exceptions or text.startswith("pytest.skip.Exception"):
            return f"raises {text}"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        name = qualified(func, module.imports) or ""
        root, chain = _chain(func)
        text = _callee_text(root, chain) if isinstance(root, ast.Name) else ""
        rule = rules.for_name(name) if name else None
        pending = rule is not None and rule.effect == "pending"
        if pending or text in rules.pending_calls or text.endswith(("scenario.skip", "step.skip")):
            return f"pending marker {ast.unparse(stmt.value)}"
    return None


def stub_reason(func: StepFunction, rules: Rules) -> str | None:
    node = func.node
    if isinstance(node, ast.Lambda):
        body = node.body
        if isinstance(body, ast.Constant) and body.value in (None, Ellipsis):
            return "lambda that returns nothing"
        return None
    statements = list(node.body)
    first = statements[0] if statements else None
    has_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    for stmt in statements:
        if _is_trivial(stmt) or _is_placeholder_output(stmt):
            continue
        return _pending_marker(stmt, func.module, rules)
    if any(not _is_trivial(s) for s in statements):
        return None  # only placeholder output: it runs, so it is hollow, not pending
    source = "\n".join(func.module.lines[node.lineno - 1 : (node.end_lineno or node.lineno)])
    if _TODO.search(source):
        return "TODO-only body"
    if any(isinstance(s, ast.Pass) for s in statements):
        return "docstring then pass" if has_docstring else "body is only pass"
    if has_docstring and len(statements) == 1:
        return "body is only a docstring"
    return "body is only ..."
