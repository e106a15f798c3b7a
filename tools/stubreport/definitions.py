"""Find step functions by reading the step modules' AST (they are never imported: importing could start
services, and the report must stay side-effect free).

Recognised registrations:
- the harness registry: ``@given/@when/@then`` from :mod:`harness.steps_registry` (``parse`` patterns,
  custom types registered with ``@parse_type("Name")`` + ``@parse.with_pattern(...)``);
- pytest-bdd: ``@given/@when/@then`` with a plain string (the ``string`` parser) or
  ``parsers.parse/cfparse/re/string(...)`` (``extra_types=`` literal dicts are understood);
- behave: ``@given/@when/@then/@step`` (and the capitalised aliases) with ``use_step_matcher(...)`` switching
  the matcher for the decorators that follow, and ``register_type(Name=func)``.

Patterns are evaluated by a small constant evaluator, so the call form ``given("x")(func)``, several
decorators on one function, decorated functions inside ``for`` loops over literal sequences, f-strings,
``str.format`` and module-level helper functions that register steps (``_alias("x", func)``) resolve to
their real pattern texts. A pattern it cannot resolve is kept as "not statically resolvable".
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Pattern, SourceError, StepFunction

REGISTRY_MODULE = "harness.steps_registry"
_KEYWORDS = ("given", "when", "then", "step")


def _registration_names() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for kw in ("given", "when", "then"):
        names[f"{REGISTRY_MODULE}.{kw}"] = ("registry", kw)
        names[f"pytest_bdd.{kw}"] = ("pytest_bdd", kw)
        names[f"pytest_bdd.steps.{kw}"] = ("pytest_bdd", kw)
    for kw in _KEYWORDS:
        for mod in ("behave", "behave.step_registry"):
            names[f"{mod}.{kw}"] = ("behave", kw)
            names[f"{mod}.{kw.capitalize()}"] = ("behave", kw)
    return names


REGISTRATIONS = _registration_names()
PYTEST_BDD_PARSERS = {f"pytest_bdd.parsers.{k}": k for k in ("parse", "cfparse", "re", "string")}
BEHAVE_USE_MATCHER = {"behave.use_step_matcher", "behave.matchers.use_step_matcher", "behave.step_matcher"}
BEHAVE_REGISTER_TYPE = {"behave.register_type", "behave.matchers.register_type"}
PARSE_TYPE = {f"{REGISTRY_MODULE}.parse_type"}
WITH_PATTERN = {"parse.with_pattern", "parse_type.with_pattern"}
_SAFE_METHODS = {
    "format", "upper", "lower", "title", "capitalize", "replace", "strip", "lstrip", "rstrip", "join",
    "split", "items", "keys", "values", "get",
}  # fmt: skip
_SAFE_BUILTINS: dict[str, Callable[..., Any]] = {
    n: getattr(builtins, n)
    for n in ("range", "zip", "enumerate", "sorted", "list", "tuple", "len", "str", "dict", "reversed")
}


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()


@dataclass
class FuncRef:
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    module: ModuleInfo
    type_pattern: str | None = None


@dataclass
class ImportRef:
    qualname: str


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


@dataclass
class TypeRegistrar:
    name: Any


@dataclass
class PatternMarker:
    regex: Any


@dataclass
class ModuleInfo:
    path: Path
    display: str
    module_name: str
    tree: ast.Module
    lines: list[str]
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)  # module-level values the evaluator knew


@dataclass
class Discovery:
    functions: list[StepFunction] = field(default_factory=list)
    modules: list[ModuleInfo] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    registry_types: dict[str, str | None] = field(default_factory=dict)  # CUSTOM_TYPES stand-ins
    behave_types: dict[str, str | None] = field(default_factory=dict)


def qualified(node: ast.AST, imports: dict[str, str]) -> str | None:
    """``parsers.parse`` → ``pytest_bdd.parsers.parse`` using the module's imports."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in imports:
        return None
    return ".".join([imports[node.id], *reversed(parts)])


def _module_name(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    parts = list(rel.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Module-level statements, including those under ``if``/``try``/``with`` (not inside functions)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If | ast.With):
            yield from _top_level(stmt.body)
            yield from _top_level(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                yield from _top_level(block)


def _read_imports(tree: ast.Module, module_name: str) -> dict[str, str]:
    imports: dict[str, str] = {}
    package = module_name.rsplit(".", 1)[0] if "." in module_name else ""
    for node in _top_level(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imports[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    imports[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    return imports


class _Evaluator:
    """Executes a module's top level (and helpers it calls) just enough to see its registrations."""

    MAX_DEPTH = 4

    def __init__(self, module: ModuleInfo, discovery: Discovery, by_node: dict[int, StepFunction]) -> None:
        self.module = module
        self.discovery = discovery
        self.by_node = by_node
        self.behave_matcher = "parse"
        self.depth = 0

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
            if node.id in env:
                return env[node.id]
            if node.id in self.module.imports:
                return ImportRef(self.module.imports[node.id])
            if node.id in _SAFE_BUILTINS:
                return _SAFE_BUILTINS[node.id]
            return UNKNOWN
        if isinstance(node, ast.Attribute):
            base = self._eval(node.value, env)
            if isinstance(base, ImportRef):
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
        args = [self._eval(a, env) for a in node.args]
        kwargs = {k.arg: self._eval(k.value, env) for k in node.keywords if k.arg}
        if isinstance(callee, ImportRef):
            name = callee.qualname
            if name in REGISTRATIONS:
                family, keyword = REGISTRATIONS[name]
                pattern = args[0] if args else kwargs.get("name", kwargs.get("pattern", UNKNOWN))
                return Registrar(family, keyword, pattern, node.lineno)
            if name in PYTEST_BDD_PARSERS:
                types = kwargs.get("extra_types", {})
                return ParserSpec(PYTEST_BDD_PARSERS[name], args[0] if args else UNKNOWN, self._types(types))
            if name in BEHAVE_USE_MATCHER:
                if args and isinstance(args[0], str):
                    self.behave_matcher = args[0]
                return None
            if name in BEHAVE_REGISTER_TYPE:
                self.discovery.behave_types.update(self._types(kwargs))
                return None
            if name in PARSE_TYPE:
                return TypeRegistrar(args[0] if args else UNKNOWN)
            if name in WITH_PATTERN:
                return PatternMarker(args[0] if args else UNKNOWN)
            return UNKNOWN
        if isinstance(callee, Registrar | TypeRegistrar | PatternMarker) and args:
            return self._apply(callee, args[0])
        if isinstance(callee, FuncRef) and not isinstance(callee.node, ast.Lambda):
            return self._run_helper(callee, args, kwargs)
        if callable(callee) and UNKNOWN not in args and UNKNOWN not in kwargs.values():
            return callee(*args, **kwargs)
        return UNKNOWN

    @staticmethod
    def _types(value: Any) -> dict[str, str | None]:
        if not isinstance(value, dict):
            return {}
        return {
            str(k): (v.type_pattern if isinstance(v, FuncRef) else None)
            for k, v in value.items()
            if isinstance(k, str)
        }

    def _apply(self, decorator: Any, target: Any) -> Any:
        if isinstance(decorator, PatternMarker) and isinstance(target, FuncRef):
            if isinstance(decorator.regex, str):
                target.type_pattern = decorator.regex
        elif isinstance(decorator, TypeRegistrar) and isinstance(decorator.name, str):
            self.discovery.registry_types[decorator.name] = (
                target.type_pattern if isinstance(target, FuncRef) else None
            )
        elif isinstance(decorator, Registrar) and isinstance(target, FuncRef):
            self._register(decorator, target)
        return target

    def _register(self, reg: Registrar, ref: FuncRef) -> None:
        func = self.by_node.get(id(ref.node))
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
            self.by_node[id(node)] = func
            self.discovery.functions.append(func)
        spec = reg.pattern
        if isinstance(spec, ParserSpec):
            parser, text, types = spec.kind, spec.text, spec.extra_types
        else:
            parser = {"registry": "parse", "pytest_bdd": "string", "behave": self.behave_matcher}[reg.family]
            text, types = spec, {}
        text = text if isinstance(text, str) else None
        if not any(p.text == text and p.keyword == reg.keyword and p.parser == parser for p in func.patterns):
            func.patterns.append(Pattern(reg.family, reg.keyword, parser, text, reg.line, types))

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
            self.run(node.body, local)
        finally:
            self.depth -= 1
        return UNKNOWN

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

    def run(self, body: Iterable[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                ref = FuncRef(stmt, self.module)
                env[stmt.name] = ref
                decorators = [self.eval(d, env) for d in stmt.decorator_list]
                for marker in (d for d in decorators if isinstance(d, PatternMarker)):
                    self._apply(marker, ref)
                for decorator, node in reversed(list(zip(decorators, stmt.decorator_list, strict=True))):
                    if isinstance(decorator, Registrar | TypeRegistrar):
                        self._apply(decorator, ref)
                    elif decorator is UNKNOWN and (found := self._registration_of(node)):
                        self._register(Registrar(*found, UNKNOWN, node.lineno), ref)
            elif isinstance(stmt, ast.Assign):
                value = self.eval(stmt.value, env)
                for target in stmt.targets:
                    self._bind(target, value, env)
                    self._custom_types_assignment(target, stmt.value, env)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self._bind(stmt.target, self.eval(stmt.value, env), env)
            elif isinstance(stmt, ast.Expr):
                self.eval(stmt.value, env)
            elif isinstance(stmt, ast.For | ast.AsyncFor):
                iterable = self.eval(stmt.iter, env)
                try:
                    items = list(iterable) if iterable is not UNKNOWN else [UNKNOWN]
                except TypeError:
                    items = [UNKNOWN]
                for item in items:
                    self._bind(stmt.target, item, env)
                    self.run(stmt.body, env)
                self.run(stmt.orelse, env)
            elif isinstance(stmt, ast.If | ast.While):
                self.run(stmt.body, env)
                self.run(stmt.orelse, env)
            elif isinstance(stmt, ast.With | ast.AsyncWith):
                self.run(stmt.body, env)
            elif isinstance(stmt, ast.Try):
                for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                    self.run(block, env)

    def _registration_of(self, node: ast.AST) -> tuple[str, str] | None:
        """A registration decorator whose pattern we could not evaluate still marks a step function."""
        target = node.func if isinstance(node, ast.Call) else node
        return REGISTRATIONS.get(qualified(target, self.module.imports) or "")

    def _custom_types_assignment(self, target: ast.AST, value: ast.AST, env: dict[str, Any]) -> None:
        """``CUSTOM_TYPES["Name"] = converter`` registers a registry type too."""
        if isinstance(target, ast.Subscript) and qualified(target.value, self.module.imports) == (
            f"{REGISTRY_MODULE}.CUSTOM_TYPES"
        ):
            key, conv = self.eval(target.slice, env), self.eval(value, env)
            if isinstance(key, str):
                self.discovery.registry_types[key] = conv.type_pattern if isinstance(conv, FuncRef) else None


def python_files(roots: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        else:
            found.extend(sorted(p for p in root.rglob("*.py") if p.is_file() and ".venv" not in p.parts))
    return found


def load_module(path: Path, display: str, root: Path) -> ModuleInfo | SourceError:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=display)
    except SyntaxError as exc:
        return SourceError(display, exc.lineno or 0, f"SyntaxError: {exc.msg}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return SourceError(display, 0, f"cannot read: {exc}")
    name = _module_name(path, root)
    module = ModuleInfo(path, display, name, tree, source.splitlines(), imports=_read_imports(tree, name))
    module.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return module


_INTERESTING = re.compile(
    r"\b(given|when|then|step|Given|When|Then|Step|parse_type|register_type|CUSTOM_TYPES)\b"
)


def discover(paths: Iterable[Path], display: dict[Path, str], root: Path) -> Discovery:
    discovery = Discovery()
    by_node: dict[int, StepFunction] = {}
    for path in paths:
        loaded = load_module(path, display[path], root)
        if isinstance(loaded, SourceError):
            discovery.errors.append(loaded)
            continue
        discovery.modules.append(loaded)
        if not _INTERESTING.search("\n".join(loaded.lines)):
            continue
        env: dict[str, Any] = {}
        try:
            _Evaluator(loaded, discovery, by_node).run(loaded.tree.body, env)
        except RecursionError:
            discovery.errors.append(SourceError(loaded.display, 0, "too deeply nested to analyse"))
        loaded.constants = {k: v for k, v in env.items() if v is not UNKNOWN}
    for func in discovery.functions:
        for pattern in func.patterns:
            if pattern.text is None:
                func.reasons.append(f"pattern at line {pattern.line} is not statically resolvable")
    return discovery
