"""What the harness itself provides on the World, read statically from the harness's modules (never
imported; where they are comes from the suite: see :mod:`.runners.registry`).

- ``declared``: World attributes the engine owns: every ``self.X`` assigned or defined (methods,
  properties) in ``class World``, and every ``<obj>.X = ...`` written on a world/context object anywhere
  in the harness (drivers that record answers). Reading one of these observes what the harness saw.
- ``plain``: attributes ``__init__`` sets to plain data (``{}``, ``[]``, ``None``): calling their methods
  (``world.marks.get(...)``) is bookkeeping, though reading them still observes harness state.
- ``inert_methods``: World methods that only keep book (``mark``, ``window``, ``defer``): their bodies
  call nothing but builtins, inert stdlib modules, plain-container methods of plain attributes and other
  inert methods. Every other World method (``start_cluster``, ``kill_worker``, the ``gateway`` driver)
  reaches a service.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from .rules import load as load_rules


def _inert_name(qualname: str) -> bool:
    rule = load_rules().for_name(qualname)
    return rule is not None and rule.effect in ("inert", "output")


def _inert_builtin(name: str) -> bool:
    return load_rules().builtin(name).effect in ("inert", "output")


FALLBACK_INERT_METHODS = frozenset({"mark", "window", "defer"})
_PLAIN = (ast.Constant, ast.Dict, ast.List, ast.Set, ast.Tuple, ast.DictComp, ast.ListComp)


@dataclass
class HarnessFacts:
    declared: set[str] = field(default_factory=set)
    inert_methods: set[str] = field(default_factory=lambda: set(FALLBACK_INERT_METHODS))
    plain: set[str] = field(default_factory=set)  # initialised to plain data: their methods are bookkeeping
    found_world: bool = False


def _plain_attrs(cls: ast.ClassDef) -> set[str]:
    """Attributes initialised to plain data (``{}``, ``[]``, ``None``, literals) in ``__init__``."""
    plain: set[str] = set()
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
            for node in ast.walk(fn):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if isinstance(node, ast.AnnAssign) and node.value is not None:
                    targets = [node.target]
                value = getattr(node, "value", None)
                for t in targets:
                    if (
                        isinstance(t, ast.Attribute)
                        and isinstance(t.value, ast.Name)
                        and t.value.id == "self"
                        and isinstance(value, _PLAIN)
                    ):
                        plain.add(t.attr)
    return plain


def _imports(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _call_is_inert(call: ast.Call, plain: set[str], inert: set[str], imports: dict[str, str]) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return _inert_builtin(func.id) if func.id not in imports else _inert_name(imports[func.id])
    if isinstance(func, ast.Attribute):
        base = func.value
        if isinstance(base, ast.Name) and base.id == "self":
            return func.attr in inert
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "self":
            return base.attr in plain
        if isinstance(base, ast.Name) and base.id in imports:
            return _inert_name(f"{imports[base.id]}.{func.attr}")
        if isinstance(base, ast.Constant | ast.Name):
            return True  # str.join, a local list's append
    return False


def _world_inert_methods(cls: ast.ClassDef, imports: dict[str, str]) -> set[str]:
    plain = _plain_attrs(cls)
    methods = {
        fn.name: fn for fn in cls.body if isinstance(fn, ast.FunctionDef) and not fn.name.startswith("__")
    }
    inert: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, fn in methods.items():
            if name in inert:
                continue
            calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
            if all(_call_is_inert(c, plain, inert, imports) for c in calls):
                inert.add(name)
                changed = True
    return inert


def read_harness(root: Path, world_class: str = "World") -> HarnessFacts:
    """Facts from every module under ``root`` (``world_class`` names the World)."""
    facts = HarnessFacts()
    if not root.is_dir():
        return facts
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, OSError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == world_class:
                facts.found_world = True
                facts.inert_methods = _world_inert_methods(node, _imports(tree))
                facts.plain = _plain_attrs(node)
                for item in ast.walk(node):
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        facts.declared.add(item.name)
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        facts.declared.add(item.target.id)
                    elif (
                        isinstance(item, ast.Attribute)
                        and isinstance(item.value, ast.Name)
                        and item.value.id == "self"
                    ):
                        facts.declared.add(item.attr)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in {"world", "context", "ctx"}
            ):
                facts.declared.add(node.attr)
    return facts
