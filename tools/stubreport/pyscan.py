"""Find Python step functions by reading the modules' AST (they are never imported: importing could
start services, and the report must stay side-effect free).

A small evaluator runs each module's top level just enough to see its registrations, so the call
form ``given("x")(func)``, stacked decorators, decorators built with ``functools.partial``, functions
registered in ``for`` loops over literal sequences, f-strings, ``str.format``, module-level helpers that
register steps (``_alias("x", func)``), ``if``/``else`` on known constants and imports inside ``try``
resolve to their real pattern texts. A pattern it cannot resolve is kept as "not statically
resolvable". Which calls register what is the runner model's business (:class:`ScanRules`): behave's
injected decorators and ``use_step_matcher``, pytest-bdd's ``parsers`` and ``scenarios()``, our
registry's module (or a ``StepRegistry`` object), with any extra keyword argument ignored.

Only the runner's own libraries are ever imported (``behave.*``, ``parse_type``), to read the pattern
of a converter they ship.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import os
from collections.abc import Callable, Iterable
from typing import Any

from .model import SourceError, StepFunction
from .pyregister import Registrations
from .pyscan_model import Discovery, ScanRules
from .pysource import ModuleInfo, _import_base, interesting, qualified
from .pyvalues import (
    UNKNOWN,
    FuncRef,
    ImportRef,
    PartialRef,
    PatternMarker,
    Registrar,
    RegistryObject,
    TypeRegistrar,
    known,
)

_SAFE_METHODS = {
    "format", "upper", "lower", "title", "capitalize", "replace", "strip", "lstrip", "rstrip", "join",
    "split", "items", "keys", "values", "get", "startswith", "endswith",
}  # fmt: skip
_SAFE_BUILTINS: dict[str, Callable[..., Any]] = {
    n: getattr(builtins, n)
    for n in (
        "range",
        "zip",
        "enumerate",
        "sorted",
        "list",
        "tuple",
        "len",
        "str",
        "dict",
        "reversed",
        "bool",
    )
}


class ScanState:
    """State shared by every module evaluated for one suite (behave's step matcher is global)."""

    def __init__(self, rules: ScanRules, discovery: Discovery) -> None:
        self.rules = rules
        self.discovery = discovery
        self.matcher = rules.default_parser
        self.order = itertools.count()
        #: behave follows imports of step libraries: module name -> ModuleInfo (None: not resolvable)
        self.resolve: Callable[[str], ModuleInfo | None] | None = None
        #: any module of the suite by name (for a converter or constant another module defines)
        self.lookup: Callable[[str], ModuleInfo | None] | None = None
        self.executed: set[str] = set()

    def constant(self, module_name: str, attr: str) -> Any:
        module = self.lookup(module_name) if self.lookup is not None else None
        if module is None:
            return UNKNOWN
        if module not in self.discovery.modules:
            self.discovery.modules.append(module)
        evaluate(module, self, force=True)
        return module.constants.get(attr, UNKNOWN)


class Evaluator(Registrations):
    """Executes a module's top level (and helpers it calls) just enough to see its registrations."""

    MAX_DEPTH = 4

    def __init__(self, module: ModuleInfo, state: ScanState) -> None:
        self.module = module
        self.state = state
        self.rules = state.rules
        self.discovery = state.discovery
        self.depth = 0

    # -- names ---------------------------------------------------------------------------------
    def _name(self, name: str, env: dict[str, Any]) -> Any:
        if name in env:
            return env[name]
        if name in self.module.imports:
            return ImportRef(self.module.imports[name])
        for star in self.module.star_imports:
            if name in self.rules.star_exports.get(star, ()):
                return ImportRef(f"{star}.{name}")
        if name in self.rules.injected:
            return ImportRef(self.rules.injected[name])
        if name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        return UNKNOWN

    # -- expressions ---------------------------------------------------------------------------
    def eval(self, node: ast.AST | None, env: dict[str, Any]) -> Any:
        try:
            return self._eval(node, env)
        except Exception:  # any surprise in user code: the value is just unknown
            return UNKNOWN

    def _eval(self, node: ast.AST | None, env: dict[str, Any]) -> Any:
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node.id, env)
        if isinstance(node, ast.Attribute):
            base = self._eval(node.value, env)
            if isinstance(base, ImportRef):
                return ImportRef(f"{base.qualname}.{node.attr}")
            if isinstance(base, RegistryObject):
                return ImportRef(f"{base.qualname}.{node.attr}")
            if isinstance(base, str | dict | list | tuple) and node.attr in _SAFE_METHODS:
                return getattr(base, node.attr)
            return UNKNOWN
        if isinstance(node, ast.JoinedStr):
            out = []
            for part in node.values:
                value = self._eval(part, env)
                if value is UNKNOWN:
                    return UNKNOWN
                out.append(str(value))
            return "".join(out)
        if isinstance(node, ast.FormattedValue):
            value = self._eval(node.value, env)
            spec = self._eval(node.format_spec, env) if node.format_spec else ""
            if value is UNKNOWN or spec is UNKNOWN:
                return UNKNOWN
            if node.conversion == ord("r"):
                value = repr(value)
            elif node.conversion == ord("s"):
                value = str(value)
            return format(value, spec)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = [self._eval(e, env) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Dict):
            return {
                self._eval(k, env): self._eval(v, env) for k, v in zip(node.keys, node.values, strict=True)
            }
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, env), self._eval(node.right, env)
            if UNKNOWN in (left, right) or not isinstance(left, str | int | float | tuple | list):
                return UNKNOWN
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Mod) and isinstance(left, str):
                return left % right
            if isinstance(node.op, ast.Mult):
                return left * right
            return UNKNOWN
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            value = self._eval(node.operand, env)
            return (
                UNKNOWN if value is UNKNOWN or not isinstance(value, bool | int | str | None) else not value
            )
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = self._eval(node.left, env), self._eval(node.comparators[0], env)
            if UNKNOWN in (left, right) or not isinstance(left, int | str | tuple | bool):
                return UNKNOWN
            op = node.ops[0]
            compare = {ast.Eq: left == right, ast.NotEq: left != right}
            if type(op) in compare:
                return compare[type(op)]
            if isinstance(op, ast.GtE | ast.Gt | ast.Lt | ast.LtE) and type(left) is type(right):
                return {ast.GtE: left >= right, ast.Gt: left > right, ast.Lt: left < right}.get(
                    type(op), left <= right
                )
            return UNKNOWN
        if isinstance(node, ast.Subscript):
            base, index = self._eval(node.value, env), self._eval(node.slice, env)
            return UNKNOWN if UNKNOWN in (base, index) else base[index]
        if isinstance(node, ast.Lambda):
            return FuncRef(node, self.module)
        if isinstance(node, ast.Call):
            return self._call(node, env)
        return UNKNOWN

    def _call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        callee = self._eval(node.func, env)
        args = [self._eval(a, env) for a in node.args if not isinstance(a, ast.Starred)]
        kwargs = {k.arg: self._eval(k.value, env) for k in node.keywords if k.arg}
        return self._invoke(callee, args, kwargs, node.lineno, node)

    def _invoke(self, callee: Any, args: list[Any], kwargs: dict[str, Any], line: int, node: ast.AST) -> Any:
        if isinstance(callee, PartialRef):
            return self._invoke(callee.callee, callee.args + args, {**callee.kwargs, **kwargs}, line, node)
        if isinstance(callee, ImportRef):
            return self._library_call(callee.qualname, args, kwargs, line, node)
        if isinstance(callee, Registrar | TypeRegistrar | PatternMarker) and args:
            return self._apply(callee, args[0])
        if isinstance(callee, FuncRef) and not isinstance(callee.node, ast.Lambda):
            return self._run_helper(callee, args, kwargs)
        if callable(callee) and UNKNOWN not in args and UNKNOWN not in kwargs.values():
            return callee(*args, **kwargs)
        return UNKNOWN

    def _run_helper(self, ref: FuncRef, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if self.depth >= self.MAX_DEPTH:
            return UNKNOWN
        node = ref.node
        assert not isinstance(node, ast.Lambda)
        params = [a.arg for a in node.args.posonlyargs + node.args.args]
        local: dict[str, Any] = dict(ref.module.constants)
        defaults = node.args.defaults
        for name, default in zip(params[len(params) - len(defaults) :], defaults, strict=True):
            local[name] = self.eval(default, local)
        local.update(zip(params, args, strict=False))
        local.update(kwargs)
        self.depth += 1
        try:
            returned = self.run(node.body, local)
        finally:
            self.depth -= 1
        return returned if known(returned) else UNKNOWN

    # -- statements ----------------------------------------------------------------------------
    def _bind(self, target: ast.AST, value: Any, env: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            values = (
                list(value) if isinstance(value, tuple | list) and len(value) == len(target.elts) else None
            )
            for i, elt in enumerate(target.elts):
                self._bind(elt, values[i] if values else UNKNOWN, env)

    def _truth(self, test: ast.AST, env: dict[str, Any]) -> bool | None:
        value = self.eval(test, env)
        if value is UNKNOWN or isinstance(value, ImportRef | FuncRef | Registrar):
            return None
        try:
            return bool(value)
        except Exception:
            return None

    def run(self, body: Iterable[ast.stmt], env: dict[str, Any]) -> Any:
        """Run statements; returns what a ``return`` gave (UNKNOWN when none ran)."""
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self._define(stmt, env)
            elif isinstance(stmt, ast.ClassDef):
                env[stmt.name] = UNKNOWN
            elif isinstance(stmt, ast.Assign):
                value = self.eval(stmt.value, env)
                for target in stmt.targets:
                    self._bind(target, value, env)
                    self._assignment_side_effects(target, stmt.value, value, env)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self._bind(stmt.target, self.eval(stmt.value, env), env)
            elif isinstance(stmt, ast.Expr):
                self.eval(stmt.value, env)
            elif isinstance(stmt, ast.Return):
                return self.eval(stmt.value, env)
            elif isinstance(stmt, ast.For | ast.AsyncFor):
                iterable = self.eval(stmt.iter, env)
                try:
                    items = list(iterable) if iterable is not UNKNOWN else [UNKNOWN]
                except TypeError:
                    items = [UNKNOWN]
                for item in items[:1000]:
                    self._bind(stmt.target, item, env)
                    self.run(stmt.body, env)
                self.run(stmt.orelse, env)
            elif isinstance(stmt, ast.If):
                truth = self._truth(stmt.test, env)
                if truth is not False:
                    self.run(stmt.body, env)
                if truth is not True:
                    self.run(stmt.orelse, env)
            elif isinstance(stmt, ast.While | ast.With | ast.AsyncWith):
                self.run(stmt.body, env)
            elif isinstance(stmt, ast.Try):
                # the imports in a ``try`` succeed (the suite runs): handlers are the fallback path
                for block in (stmt.body, stmt.orelse, stmt.finalbody):
                    self.run(block, env)
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                self._follow(stmt)
        return UNKNOWN

    def _define(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef, env: dict[str, Any]) -> None:
        ref = FuncRef(stmt, self.module)
        env[stmt.name] = ref
        decorators = [self.eval(d, env) for d in stmt.decorator_list]
        for marker in (d for d in decorators if isinstance(d, PatternMarker)):
            self._apply(marker, ref)
        for decorator, node in reversed(list(zip(decorators, stmt.decorator_list, strict=True))):
            if isinstance(decorator, Registrar | TypeRegistrar):
                self._apply(decorator, ref)
            elif isinstance(decorator, PartialRef):
                made = self._invoke(decorator, [], {}, node.lineno, node)
                if isinstance(made, Registrar):
                    self._apply(made, ref)
            elif decorator is UNKNOWN and (keyword := self._registration_of(node)):
                self._register(Registrar(self.rules.family, keyword, UNKNOWN, node.lineno), ref)
        for node in stmt.decorator_list:
            target = node.func if isinstance(node, ast.Call) else node
            if qualified(target, self.module.imports) in self.rules.fixture_decorators:
                name = next((k.value.value for k in getattr(node, "keywords", []) if k.arg == "name"
                             and isinstance(k.value, ast.Constant)), stmt.name)  # fmt: skip
                self.module.fixtures[str(name)] = stmt

    def _assignment_side_effects(
        self, target: ast.AST, node: ast.AST, value: Any, env: dict[str, Any]
    ) -> None:
        if isinstance(target, ast.Subscript) and qualified(target.value, self.module.imports) in (
            self.rules.custom_types_dicts
        ):
            key = self.eval(target.slice, env)
            if isinstance(key, str):
                self.discovery.types[key] = self._converter_pattern(value)
        if isinstance(target, ast.Name) and self.depth == 0:
            if target.id == "pytest_plugins":
                plugins = value if isinstance(value, list | tuple) else [value]
                self.module.plugins.extend(p for p in plugins if isinstance(p, str))
            elif target.id == "__all__" and isinstance(value, list | tuple):
                self.module.exports = [v for v in value if isinstance(v, str)]

    def _follow(self, stmt: ast.Import | ast.ImportFrom) -> None:
        """behave: an imported step library registers its steps at the import, in order."""
        if self.state.resolve is None or self.depth:
            return
        names: list[str] = []
        if isinstance(stmt, ast.Import):
            names = [alias.name for alias in stmt.names]
        else:
            base = _import_base(stmt, self.module.module_name, self.module.path.name == "__init__.py")
            names = [base] + [f"{base}.{alias.name}" for alias in stmt.names if alias.name != "*"]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b, a.b.c
                execute(".".join(parts[:i]), self.state)


def evaluate(module: ModuleInfo, state: ScanState, force: bool = False) -> None:
    """Run one module's top level (once; ``force``: even when it registers nothing)."""
    key = f"file:{os.path.abspath(module.path)}"  # two conftest.py files share a module name, not a path
    if key in state.executed:
        return
    state.executed.add(key)
    env: dict[str, Any] = {}
    if force or interesting(module):
        try:
            Evaluator(module, state).run(module.tree.body, env)
        except RecursionError:
            state.discovery.errors.append(SourceError(module.display, 0, "too deeply nested to analyse"))
    module.constants = {k: v for k, v in env.items() if v is not UNKNOWN}


def execute(name: str, state: ScanState) -> None:
    if name in state.executed or state.resolve is None:
        return
    module = state.resolve(name)
    if module is None:
        state.executed.add(name)
        return
    if module not in state.discovery.modules:
        state.discovery.modules.append(module)
    evaluate(module, state)


def unresolved_patterns(functions: list[StepFunction]) -> None:
    for func in functions:
        for pattern in func.patterns:
            if pattern.text is None:
                func.reasons.append(f"pattern at line {pattern.line} is not statically resolvable")
