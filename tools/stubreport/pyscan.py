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
import functools
import importlib
import itertools
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Pattern, SourceError, StepFunction

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
#: Libraries whose converters may be imported to read their ``pattern`` (runner code, not test code).
_IMPORTABLE = ("behave.", "parse_type.", "parse.")


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"

    def __bool__(self) -> bool:
        raise TypeError("unknown truth value")


UNKNOWN: Any = _Unknown()


def known(value: Any) -> bool:
    return value is not UNKNOWN


@dataclass
class FuncRef:
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    module: ModuleInfo
    type_pattern: str | None = None


@dataclass
class ImportRef:
    qualname: str


@dataclass
class PartialRef:
    """``functools.partial(callee, *args, **kwargs)``."""

    callee: Any
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass
class ParserSpec:
    kind: str
    text: Any
    extra_types: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Registrar:
    family: str
    keyword: str
    pattern: Any
    line: int
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TypeRegistrar:
    name: Any


@dataclass
class PatternMarker:
    regex: Any


@dataclass
class RegistryObject:
    """An instance of the registry's ``StepRegistry`` class: its ``.given`` etc. register steps."""

    qualname: str


@dataclass
class Binding:
    """pytest-bdd: ``scenarios(paths...)`` or ``@scenario(path, name)`` in a module."""

    module: str  # display path
    paths: list[str]
    scenario: str | None = None
    base_dir: str | None = None
    line: int = 0


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


@dataclass
class ScanRules:
    """What registers a step, for one runner model."""

    family: str
    registrations: dict[str, str]  # qualified name -> keyword ("given"...; "step" = any)
    default_parser: str  # parser of a plain-string pattern
    registry_modules: tuple[str, ...] = ()  # ``<module>.<obj>.given`` registers too (StepRegistry)
    injected: dict[str, str] = field(default_factory=dict)  # unbound name -> qualified name (behave)
    star_exports: dict[str, list[str]] = field(default_factory=dict)
    parsers: dict[str, str] = field(default_factory=dict)  # qualified name -> parser kind (pytest-bdd)
    use_matcher: frozenset[str] = frozenset()
    register_type: frozenset[str] = frozenset()
    define_parameter_type: frozenset[str] = frozenset()
    cucumber_matcher: frozenset[str] = frozenset()  # behave's use_step_matcher_for_cucumber_expressions
    type_decorators: frozenset[str] = frozenset()  # registry: @parse_type("Name")
    custom_types_dicts: frozenset[str] = frozenset()  # registry: CUSTOM_TYPES["Name"] = conv
    bindings: dict[str, str] = field(default_factory=dict)  # pytest-bdd scenario/scenarios
    fixture_decorators: frozenset[str] = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})


@dataclass
class Discovery:
    functions: list[StepFunction] = field(default_factory=list)
    modules: list[ModuleInfo] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    types: dict[str, str | None] = field(default_factory=dict)  # custom parse types: name -> regex
    cucumber_types: dict[str, str] = field(default_factory=dict)  # cucumber parameter types
    bindings: list[Binding] = field(default_factory=list)
    by_node: dict[int, StepFunction] = field(default_factory=dict)


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


class Evaluator:
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

    def _keyword_of(self, name: str) -> str | None:
        if name in self.rules.registrations:
            return self.rules.registrations[name]
        for module in self.rules.registry_modules:
            if name.startswith(module + "."):
                last = name.rsplit(".", 1)[-1]
                if last in ("given", "when", "then", "step") and name.count(".") > module.count(".") + 1:
                    return last
        return None

    def _library_call(
        self, name: str, args: list[Any], kwargs: dict[str, Any], line: int, node: ast.AST
    ) -> Any:
        rules = self.rules
        if name in ("functools.partial",) and args:
            return PartialRef(args[0], args[1:], kwargs)
        keyword = self._keyword_of(name)
        if keyword is not None:
            pattern = (
                args[0]
                if args
                else kwargs.get("name", kwargs.get("pattern", kwargs.get("step_text", UNKNOWN)))
            )
            extra = {k: v for k, v in kwargs.items() if k not in ("name", "pattern", "step_text")}
            if len(args) > 1 and rules.family == "pytest_bdd":
                extra.setdefault("converters", args[1])
            return Registrar(rules.family, keyword, pattern, line, extra)
        if name in rules.parsers:
            types = self._types(kwargs.get("extra_types", args[1] if len(args) > 1 else {}))
            return ParserSpec(rules.parsers[name], args[0] if args else kwargs.get("name", UNKNOWN), types)
        if name in rules.use_matcher:
            value = args[0] if args else kwargs.get("name", UNKNOWN)
            if isinstance(value, str):
                self.state.matcher = value
            elif isinstance(value, ImportRef):  # use_step_matcher(SomeMatcherClass)
                self.state.matcher = value.qualname
            return None
        if name in rules.cucumber_matcher:
            self.state.matcher = "cucumber"
            return None
        if name in rules.register_type:
            self.discovery.types.update(self._types(kwargs))
            return None
        if name in rules.define_parameter_type:
            self._parameter_type(args, kwargs)
            return None
        if name in rules.type_decorators:
            return TypeRegistrar(args[0] if args else UNKNOWN)
        if name in ("parse.with_pattern", "parse_type.with_pattern"):
            return PatternMarker(args[0] if args else UNKNOWN)
        if name in rules.bindings:
            self._binding(rules.bindings[name], args, kwargs, line)
            return UNKNOWN
        for module in rules.registry_modules:
            if name.startswith(module + ".") and name.rsplit(".", 1)[-1] == "StepRegistry":
                return RegistryObject(name)
        if name.startswith(("parse_type.TypeBuilder", "behave.cucumber_expression.TypeBuilder")):
            return self._type_builder(name, args, kwargs)
        return UNKNOWN

    def _binding(self, kind: str, args: list[Any], kwargs: dict[str, Any], line: int) -> None:
        base = kwargs.get("features_base_dir")
        base = base if isinstance(base, str) else None
        if kind == "scenarios":
            paths = [a for a in args if isinstance(a, str)]
            self.discovery.bindings.append(Binding(self.module.display, paths, None, base, line))
        else:
            feature = args[0] if args else kwargs.get("feature_name")
            name = args[1] if len(args) > 1 else kwargs.get("scenario_name")
            if isinstance(feature, str) and isinstance(name, str):
                self.discovery.bindings.append(Binding(self.module.display, [feature], name, base, line))

    def _type_builder(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run parse_type's TypeBuilder (pure library code) on stand-in converters, for its pattern."""
        from .matching import stand_in

        def real(value: Any) -> Any:
            if isinstance(value, FuncRef | _PatternHolder):
                return stand_in(value.type_pattern)
            if isinstance(value, list | tuple):
                return type(value)(real(v) for v in value)
            return value

        if UNKNOWN in args or UNKNOWN in kwargs.values():
            return UNKNOWN
        try:
            module_name, attr = name.rsplit(".", 1)
            builder = importlib.import_module(module_name.rsplit(".", 1)[0]).TypeBuilder
            made = getattr(builder, attr)(*[real(a) for a in args], **{k: real(v) for k, v in kwargs.items()})
        except Exception:
            return UNKNOWN
        return _PatternHolder(getattr(made, "pattern", None))

    def _parameter_type(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        name = kwargs.get("name", args[0] if args else UNKNOWN)
        regexp = kwargs.get("regexp", args[1] if len(args) > 1 else UNKNOWN)
        if isinstance(name, str) and isinstance(regexp, str):
            self.discovery.cucumber_types[name] = regexp

    def _types(self, value: Any) -> dict[str, str | None]:
        if not isinstance(value, dict):
            return {}
        return {str(k): self._converter_pattern(v) for k, v in value.items() if isinstance(k, str)}

    def _converter_pattern(self, value: Any) -> str | None:
        if isinstance(value, FuncRef | _PatternHolder):
            return value.type_pattern
        if not isinstance(value, ImportRef):
            return None
        module_name, _, attr = value.qualname.rpartition(".")
        if value.qualname.startswith(_IMPORTABLE):
            try:
                return getattr(getattr(importlib.import_module(module_name), attr), "pattern", None)
            except Exception:
                return None
        found = self.state.constant(module_name, attr)  # a converter of another module of the suite
        return found.type_pattern if isinstance(found, FuncRef | _PatternHolder) else None

    def _apply(self, decorator: Any, target: Any) -> Any:
        if isinstance(decorator, PatternMarker) and isinstance(target, FuncRef):
            if isinstance(decorator.regex, str):
                target.type_pattern = decorator.regex
        elif isinstance(decorator, TypeRegistrar) and isinstance(decorator.name, str):
            self.discovery.types[decorator.name] = self._converter_pattern(target)
        elif isinstance(decorator, Registrar) and isinstance(target, FuncRef):
            self._register(decorator, target)
        return target

    def _register(self, reg: Registrar, ref: FuncRef) -> None:
        func = self.discovery.by_node.get(id(ref.node))
        if func is None:
            node = ref.node
            first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
            func = StepFunction(
                path=ref.module.display,
                name=getattr(node, "name", "<lambda>"),
                line=node.lineno,
                first_line=first,
                node=node,
                module=ref.module,
            )
            self.discovery.by_node[id(node)] = func
            self.discovery.functions.append(func)
        spec = reg.pattern
        if isinstance(spec, ParserSpec):
            parser, text, types = spec.kind, spec.text, spec.extra_types
        else:
            parser = self.state.matcher if reg.family == "behave" else self.rules.default_parser
            text, types = spec, {}
        text = text if isinstance(text, str) else None
        for p in func.patterns:
            if (p.text, p.keyword, p.parser, p.namespace) == (text, reg.keyword, parser, self.module.display):
                return
        func.patterns.append(
            Pattern(
                family=reg.family,
                keyword=reg.keyword,
                parser=parser,
                text=text,
                line=reg.line,
                extra_types=types,
                order=next(self.state.order),
                namespace=self.module.display,
                path=self.module.display,
                needs=_capabilities(reg.kwargs.get("needs")),
            )
        )
        target = reg.kwargs.get("target_fixture")
        if isinstance(target, str):
            func.patterns[-1].extra_types = {**types}
            func.target_fixture = target
        self.module.step_fixtures += 1

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

    def _registration_of(self, node: ast.AST) -> str | None:
        """A registration decorator whose pattern we could not evaluate still marks a step function."""
        target = node.func if isinstance(node, ast.Call) else node
        name = qualified(target, self.module.imports)
        if name is None and isinstance(target, ast.Name) and target.id in self.rules.injected:
            name = self.rules.injected[target.id]
        return self._keyword_of(name or "")

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


class _PatternHolder:
    def __init__(self, pattern: str | None) -> None:
        self.type_pattern = pattern


_INTERESTING = re.compile(
    r"\b(given|when|then|step|Given|When|Then|Step|parse_type|register_type|CUSTOM_TYPES|scenarios?|"
    r"use_step_matcher|step_matcher|pytest_plugins|fixture|define_parameter_type|StepRegistry)\b"
)


def interesting(module: ModuleInfo) -> bool:
    return bool(_INTERESTING.search("\n".join(module.lines)))


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


def python_files(roots: Iterable[Path], skip: Callable[[Path], bool] | None = None) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        else:
            found.extend(sorted(p for p in root.rglob("*.py") if p.is_file() and not (skip and skip(p))))
    return found


_ = functools  # functools.partial is recognised by name


def _capabilities(value: Any) -> tuple[str, ...]:
    """A ``needs=(...)`` keyword read statically: the capability names when they are string constants."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()
