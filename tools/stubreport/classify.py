"""Stub / hollow / implemented: the rules, decided on the step function's AST.

**stub** — the body cannot pass: after dropping the docstring, ``pass``, ``...`` and bare strings (and
any ``print``/logging placeholder lines before it) nothing is left, or what is left starts with a pending
marker: ``raise NotImplementedError(...)`` (behave's pending too), ``pytest.skip/xfail``, ``pending()``,
``context.scenario.skip()``. A body that is only ``pass``/docstring whose source mentions TODO/FIXME is
reported as "TODO-only".

**hollow** — the body runs but reaches nothing real. Decided by data flow, not keywords:

* every value is *tainted real* when it comes from a call that may reach a service, or from a World
  attribute that holds real data; taints flow through locals, expressions, comprehensions, ``with``/``for``
  targets and into World attributes written by steps;
* a call is *inert* when it is a builtin (``len``, ``print``...), a function of an inert stdlib module
  (``logging``, ``time.sleep``, ``random``, ``json``...), a container method on an inert value
  (``world.flags.append(...)`` where only steps fill ``flags``), a bookkeeping World method found by
  reading ``harness/`` (``mark``, ``window``, ``defer``), or ``trace.touch`` called by the step itself
  (faking a touch is hollow, and said so). Everything else is *real*: World driver/backend methods
  (``world.kill_worker(...)``, ``world.gateway.infer(...)``), harness or third-party functions, fixtures
  (pytest-bdd parameters that are not pattern arguments), calls on real-tainted values. Helper functions
  of the step modules are analysed recursively;
* a World attribute is *fake* when only step code assigns it (never the harness: ``class World`` or a
  driver writing ``world.X``) and every such assignment or container mutation stores an inert value — a
  fixpoint over the whole step library. ``assert world.hive_crashed`` where steps only ever did
  ``world.hive_crashed = True`` reads a fake attribute: hollow. Reading a harness attribute, an attribute
  some step filled from a real call, or an attribute nobody in the steps assigns (provided by the
  harness) observes real data;
* **implemented** = at least one real call or one real read; otherwise **hollow**, with the reason
  (only sets world.a, world.b; asserts on values it set itself; only logs/prints/sleeps; ...).

The run-time trace then overrides the static view: a step that *passed* with ``touches == 0`` is
hollow whatever this module concluded (see :mod:`.trace`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .definitions import ModuleInfo, qualified
from .harness_facts import HarnessFacts
from .model import HOLLOW, IMPLEMENTED, STUB, StepFunction
from .vocabulary import (
    BEHAVE_CONTEXT_INERT_METHODS,
    BEHAVE_CONTEXT_INPUT,
    FAKE_TOUCH,
    INERT_BUILTINS,
    LOG_METHODS,
    MUTATORS,
    PENDING,
    PENDING_EXCEPTIONS,
    SLEEPS,
    inert_qualname,
)

_TODO = re.compile(r"\b(TODO|FIXME|XXX|TBD)\b")
_WORLD_NAMES = {"world", "context", "ctx"}
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


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


def _pending_marker(stmt: ast.stmt, module: ModuleInfo) -> str | None:
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        name = exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", "")
        text = ast.unparse(stmt.exc)
        if name in PENDING_EXCEPTIONS or text.startswith(("pytest.skip.Exception", "Pending")):
            return f"raises {text}"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        name = qualified(func, module.imports) or ""
        text = ast.unparse(func)
        if name in PENDING or text in {"pending", "skip"} or text.endswith(("scenario.skip", "step.skip")):
            return f"pending marker {ast.unparse(stmt.value)}"
    return None


def stub_reason(func: StepFunction) -> str | None:
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
        marker = _pending_marker(stmt, func.module)
        return marker
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


# -- data flow ----------------------------------------------------------------------------------------
@dataclass
class Flow:
    """What one function body does, as seen by :class:`_Analyzer`."""

    real: list[str] = field(default_factory=list)
    real_reads: list[str] = field(default_factory=list)
    writes: dict[str, bool] = field(default_factory=dict)  # world attr -> stored a real value
    global_writes: dict[str, bool] = field(default_factory=dict)  # "module.name" -> stored a real value
    fake_reads: list[str] = field(default_factory=list)
    local_only_asserts: int = 0
    asserts: int = 0
    outputs: set[str] = field(default_factory=set)  # "logs", "prints", "sleeps", "fakes a trace touch"
    world_label: str = "world"

    def merge(self, other: Flow) -> None:
        self.real.extend(other.real)
        self.real_reads.extend(other.real_reads)
        for k, v in other.writes.items():
            self.writes[k] = self.writes.get(k, False) or v
        self.fake_reads.extend(other.fake_reads)
        self.outputs |= other.outputs


@dataclass
class Library:
    """Whole-library facts the per-function analysis needs."""

    harness: HarnessFacts
    modules: dict[str, ModuleInfo]  # by dotted module name
    step_written: set[str] = field(default_factory=set)
    real_valued: set[str] = field(default_factory=set)
    real_globals: set[str] = field(default_factory=set)  # module-level containers filled from real calls
    _globals: dict[str, set[str]] = field(default_factory=dict)

    def module_globals(self, module: ModuleInfo) -> set[str]:
        """Names a step module binds at top level (its module state)."""
        if module.module_name not in self._globals:
            names: set[str] = set()
            for stmt in module.tree.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            self._globals[module.module_name] = names
        return self._globals[module.module_name]

    def attr_kind(self, attr: str, behave_context: bool) -> str:
        if behave_context and attr in BEHAVE_CONTEXT_INPUT:
            return "input"
        if attr in self.harness.declared:
            return "harness"
        if attr in self.step_written:
            return "real" if attr in self.real_valued else "fake"
        return "unknown"  # nobody in the steps sets it: the harness provides it


def _root(node: ast.AST) -> tuple[ast.AST, str | None]:
    """The name a target or call hangs off (through attributes, subscripts, calls); its first attribute."""
    first: str | None = None
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        if isinstance(node, ast.Attribute):
            first = node.attr
            node = node.value
        elif isinstance(node, ast.Subscript):
            first, node = None, node.value
        else:
            first, node = None, node.func
    return node, first


def _chain(node: ast.AST) -> tuple[ast.AST, list[str]]:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, list(reversed(attrs))


class _Analyzer:
    def __init__(
        self,
        lib: Library,
        module: ModuleInfo,
        world: set[str],
        inert_params: set[str],
        real_params: set[str],
        behave: bool,
        stack: tuple[int, ...] = (),
    ) -> None:
        self.lib, self.module, self.world, self.behave = lib, module, world, behave
        self.locals: dict[str, bool] = dict.fromkeys(inert_params, False) | dict.fromkeys(real_params, True)
        self.flow = Flow()
        self.stack = stack
        self._module_taint: dict[str, bool] = {}

    # -- expressions ---------------------------------------------------------------------------
    def taint(self, node: ast.AST | None) -> bool:
        if node is None or isinstance(node, ast.Constant):
            return False
        if isinstance(node, ast.Name):
            return self._name_taint(node.id)
        if isinstance(node, ast.Attribute):
            root, chain = _chain(node)
            if isinstance(root, ast.Name) and root.id in self.world:
                return self._world_read(root.id, chain[0])
            return self.taint(node.value)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Lambda):
            return self.taint(node.body)  # a callable that reaches a service is a real value
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            for gen in node.generators:
                self._assign(gen.target, self.taint(gen.iter))
                for cond in gen.ifs:
                    self.taint(cond)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            return any([self.taint(p) for p in parts]) or any(self.taint(g.iter) for g in node.generators)
        if isinstance(node, ast.NamedExpr):
            value = self.taint(node.value)
            self._assign(node.target, value)
            return value
        return any([self.taint(child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)])

    def _world_read(self, root: str, attr: str) -> bool:
        kind = self.lib.attr_kind(attr, self.behave)
        if kind == "fake":
            self.flow.fake_reads.append(f"{root}.{attr}")
            return False
        if kind == "input":
            return False
        self.flow.real_reads.append(f"{root}.{attr}")
        return True

    def _name_taint(self, name: str) -> bool:
        if name in self.locals:
            return self.locals[name]
        if name in self.world:
            return False
        if name in self.module.imports:
            qual = self.module.imports[name]
            if qual in self.lib.real_globals:
                self.flow.real_reads.append(qual)
                return True
            return not inert_qualname(qual)
        key = f"{self.module.module_name}.{name}"
        if key in self.lib.real_globals:
            self.flow.real_reads.append(key)
            return True
        if name in self._module_taint:
            return self._module_taint[name]
        self._module_taint[name] = False
        for stmt in self.module.tree.body:
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in stmt.targets
            ):
                self._module_taint[name] = _Analyzer(self.lib, self.module, set(), set(), set(), False).taint(
                    stmt.value
                )
        return self._module_taint[name]

    def _call(self, node: ast.Call) -> bool:
        args = [a.value if isinstance(a, ast.Starred) else a for a in node.args] + [
            k.value for k in node.keywords
        ]
        arg_taints = [self.taint(a) for a in args]
        func = node.func
        root, chain = _chain(func)
        text = ast.unparse(func)
        if isinstance(root, ast.Name) and root.id in self.world:
            return self._world_call(root.id, chain, any(arg_taints), text)
        if isinstance(func, ast.Name) and func.id in ("setattr", "getattr") and args:
            return self._attr_builtin(func.id, args, arg_taints)
        if isinstance(root, ast.Name) and root.id in self.locals:
            base = self.locals[root.id]
            if chain and chain[-1] in MUTATORS and any(arg_taints):
                self.locals[root.id] = True
            if base:  # a fixture, a client or a callable that reaches a service
                self.flow.real.append(f"calls {text}()")
            return base or any(arg_taints)
        if isinstance(func, ast.Attribute) and func.attr in MUTATORS:
            base, _ = _root(func.value)
            if isinstance(base, ast.Name) and base.id in self.lib.module_globals(self.module):
                self._mutate(func.value, any(arg_taints))
                return self._name_taint(base.id)
        qual = qualified(func, self.module.imports)
        if qual:
            return self._qualified_call(qual, text, arg_taints, node)
        if isinstance(func, ast.Name):
            return self._name_call(func.id, arg_taints, node)
        if isinstance(root, ast.Name) and chain:
            base = self._name_taint(root.id)
            if not base and chain[-1] in LOG_METHODS:
                self.flow.outputs.add("logs")
            if base:
                self.flow.real.append(f"calls {text}()")
            return base
        return self.taint(func) or any(arg_taints)

    def _world_call(self, root: str, chain: list[str], args_real: bool, text: str) -> bool:
        attr = chain[0]
        kind = self.lib.attr_kind(attr, self.behave)
        if len(chain) == 1:
            if attr in self.lib.harness.inert_methods or kind == "fake":
                return False
            if self.behave and attr in BEHAVE_CONTEXT_INERT_METHODS:
                return False
            self.flow.real.append(f"calls {text}()")
            return True
        if kind == "harness" and attr in self.lib.harness.plain:
            self.flow.real_reads.append(f"{root}.{attr}")
            return True
        if kind in ("fake", "input"):
            if kind == "fake" and chain[-1] in MUTATORS:
                self.flow.writes[attr] = self.flow.writes.get(attr, False) or args_real
            elif kind == "fake":
                self.flow.fake_reads.append(f"{root}.{attr}")
            if kind == "input" and chain[-1] == "skip":
                self.flow.outputs.add("skips")
            return False
        self.flow.real.append(f"calls {text}()")
        return True

    def _attr_builtin(self, name: str, args: list[ast.expr], taints: list[bool]) -> bool:
        target, key = args[0], args[1] if len(args) > 1 else None
        if isinstance(target, ast.Name) and target.id in self.world and isinstance(key, ast.Constant):
            attr = str(key.value)
            if name == "setattr":
                value = taints[2] if len(taints) > 2 else False
                self.flow.writes[attr] = self.flow.writes.get(attr, False) or value
                return False
            return self._world_read(target.id, attr)
        return any(taints)

    def _qualified_call(self, qual: str, text: str, arg_taints: list[bool], node: ast.Call) -> bool:
        if qual in FAKE_TOUCH:
            self.flow.outputs.add("fakes a trace touch")
            return False
        if qual in SLEEPS:
            self.flow.outputs.add("sleeps")
            return False
        if qual.split(".")[0] == "logging":
            self.flow.outputs.add("logs")
            return any(arg_taints)
        if inert_qualname(qual):
            return any(arg_taints)
        helper = self._resolve_helper(qual)
        if helper is not None:
            return self._helper(helper[0], helper[1], node, text, arg_taints)
        self.flow.real.append(f"calls {text}()")
        return True

    def _name_call(self, name: str, arg_taints: list[bool], node: ast.Call) -> bool:
        if name in self.module.functions:
            return self._helper(self.module.functions[name], self.module, node, name, arg_taints)
        if name == "print":
            self.flow.outputs.add("prints")
            return False
        if name in INERT_BUILTINS:
            return any(arg_taints)
        if self._name_taint(name):  # a module-level client/callable built from something real
            self.flow.real.append(f"calls {name}()")
            return True
        return any(arg_taints)  # a class or plain value defined in the step module itself

    def _resolve_helper(self, qual: str) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, ModuleInfo] | None:
        module_name, _, name = qual.rpartition(".")
        module = self.lib.modules.get(module_name)
        if module is not None and name in module.functions:
            return module.functions[name], module
        return None

    def _helper(
        self,
        fn: ast.FunctionDef | ast.AsyncFunctionDef,
        module: ModuleInfo,
        call: ast.Call,
        text: str,
        arg_taints: list[bool],
    ) -> bool:
        if id(fn) in self.stack or len(self.stack) > 6:
            return False
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
        world = {p for p in params if p in _WORLD_NAMES}
        real: set[str] = set()
        keywords = [(kw.arg, kw.value) for kw in call.keywords]
        passed = list(zip(params, call.args, strict=False)) + keywords
        for (param, arg), tainted in zip(passed, arg_taints, strict=False):
            if param is None:
                continue
            if isinstance(arg, ast.Name) and arg.id in self.world:
                world.add(param)
            elif tainted:
                real.add(param)
        inner = _Analyzer(
            self.lib, module, world, set(params) - world - real, real, self.behave, (*self.stack, id(fn))
        )
        inner.run(fn.body)
        flow = inner.flow
        if flow.real:
            self.flow.real.append(f"calls {text}() which {flow.real[0]}")
        self.flow.writes.update({k: self.flow.writes.get(k, False) or v for k, v in flow.writes.items()})
        self.flow.global_writes.update(
            {k: self.flow.global_writes.get(k, False) or v for k, v in flow.global_writes.items()}
        )
        self.flow.real_reads.extend(flow.real_reads)
        self.flow.fake_reads.extend(flow.fake_reads)
        self.flow.outputs |= flow.outputs
        return bool(flow.real or flow.real_reads)

    # -- statements ----------------------------------------------------------------------------
    def _assign(self, target: ast.AST, value: bool) -> None:
        if isinstance(target, ast.Name):
            self.locals[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._assign(elt, value)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, value)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            if isinstance(target, ast.Subscript):
                self.taint(target.slice)
            root, chain = _chain(target.value if isinstance(target, ast.Subscript) else target)
            if isinstance(root, ast.Name) and root.id in self.world and chain:
                self.flow.writes[chain[0]] = self.flow.writes.get(chain[0], False) or value
                return
            self._mutate(target, value)

    def _mutate(self, node: ast.AST, value: bool) -> None:
        """A store into (or a mutator call on) a local or a module-level container."""
        root, _ = _root(node)
        if not isinstance(root, ast.Name):
            return
        if root.id in self.locals:
            self.locals[root.id] = self.locals[root.id] or value
        elif root.id in self.module.imports or root.id in self.lib.module_globals(self.module):
            key = self.module.imports.get(root.id, f"{self.module.module_name}.{root.id}")
            self.flow.global_writes[key] = self.flow.global_writes.get(key, False) or value

    def run(self, body: Iterable[ast.stmt]) -> None:
        for stmt in body:
            self._stmt(stmt)

    def _stmt(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            value = self.taint(stmt.value)
            for target in stmt.targets:
                self._assign(target, value)
        elif isinstance(stmt, ast.AugAssign):
            value = self.taint(stmt.value)
            if isinstance(stmt.target, ast.Name):
                value = value or self.locals.get(stmt.target.id, False)
            self._assign(stmt.target, value)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self._assign(stmt.target, self.taint(stmt.value))
        elif isinstance(stmt, ast.Assert):
            self.flow.asserts += 1
            before = (len(self.flow.real), len(self.flow.real_reads), len(self.flow.fake_reads))
            self.taint(stmt.test)
            self.taint(stmt.msg)
            if before == (len(self.flow.real), len(self.flow.real_reads), len(self.flow.fake_reads)):
                self.flow.local_only_asserts += 1
        elif isinstance(stmt, ast.Expr | ast.Return):
            self.taint(stmt.value)
        elif isinstance(stmt, ast.Raise):
            self.taint(stmt.exc)
        elif isinstance(stmt, ast.If | ast.While):
            self.taint(stmt.test)
            self.run(stmt.body)
            self.run(stmt.orelse)
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            self._assign(stmt.target, self.taint(stmt.iter))
            self.run(stmt.body)
            self.run(stmt.orelse)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                value = self.taint(item.context_expr)
                if item.optional_vars is not None:
                    self._assign(item.optional_vars, value)
            self.run(stmt.body)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            self.run(stmt.body)
            for handler in stmt.handlers:
                if handler.name:
                    self.locals[handler.name] = True  # an exception a real call may have raised
                self.run(handler.body)
            self.run(stmt.orelse)
            self.run(stmt.finalbody)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            before = len(self.flow.real) + len(self.flow.real_reads)
            self.run(stmt.body)
            self.locals[stmt.name] = len(self.flow.real) + len(self.flow.real_reads) > before
        elif isinstance(stmt, ast.Match):
            self.taint(stmt.subject)
            for case in stmt.cases:
                self.run(case.body)


# -- per step function --------------------------------------------------------------------------------
def _param_names(node: FunctionNode) -> list[str]:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return names + [a.arg for a in (args.vararg, args.kwarg) if a is not None]


def _pattern_fields(func: StepFunction) -> set[str]:
    fields: set[str] = set()
    for p in func.patterns:
        if p.text:
            fields |= set(re.findall(r"\{([A-Za-z_]\w*)", p.text)) | set(re.findall(r"\(\?P<(\w+)>", p.text))
    return fields


def analyze(func: StepFunction, lib: Library) -> Flow:
    params = _param_names(func.node)
    families = func.families
    if families & {"registry", "behave"} and params:
        world = {params[0]}
        inert, real = set(params[1:]), set()
    else:  # pytest-bdd: parameters are pattern arguments or fixtures
        fields = _pattern_fields(func)
        world = {p for p in params if p in _WORLD_NAMES}
        inert = {p for p in params if p in fields}
        real = set(params) - world - inert
    analyzer = _Analyzer(lib, func.module, world, inert, real, behave="behave" in families)
    analyzer.flow.world_label = min(world) if world else "world"
    if isinstance(func.node, ast.Lambda):
        analyzer.taint(func.node.body)
    else:
        analyzer.run(func.node.body)
    return analyzer.flow


def _safe_analyze(func: StepFunction, lib: Library) -> Flow:
    """A construct the analysis does not handle must not sink the report: count it as real (said so)."""
    try:
        return analyze(func, lib)
    except (RecursionError, ValueError, TypeError, AttributeError, KeyError) as exc:
        return Flow(real=[f"could not be analysed ({type(exc).__name__}: {exc}); assumed real"])


def hollow_reasons(flow: Flow) -> list[str]:
    reasons: list[str] = []
    if flow.writes:
        reasons.append("only sets " + ", ".join(f"{flow.world_label}.{a}" for a in sorted(flow.writes)))
    if flow.fake_reads:
        attrs = sorted({r.split(".", 1)[1] for r in flow.fake_reads})
        own = [a for a in attrs if a in flow.writes]
        if own and flow.asserts:
            reasons.append("asserts on values it set itself (" + ", ".join(own) + ")")
        others = [a for a in attrs if a not in flow.writes]
        if others:
            reasons.append("reads only attributes that steps set, never a driver (" + ", ".join(others) + ")")
    elif flow.asserts:
        reasons.append("asserts only on its own values or the feature's input")
    if flow.global_writes:
        reasons.append("keeps only module state (" + ", ".join(sorted(flow.global_writes)) + ")")
    for output in sorted(flow.outputs):
        reasons.append(output)
    if not reasons:
        reasons.append("does nothing that reaches a service")
    return [r if i else f"touches nothing real: {r}" for i, r in enumerate(reasons)]


def classify_all(functions: list[StepFunction], lib: Library) -> None:
    """Set ``verdict``/``reasons`` on every function (stub, hollow or implemented; usage comes later)."""
    stubs = {id(f): stub_reason(f) for f in functions}
    flows = {id(f): _safe_analyze(f, lib) for f in functions if not stubs[id(f)]}
    # Which World attributes step code writes (itself or through the helpers it calls), then a fixpoint
    # on which of them (and which module-level containers) ever hold a real value.
    lib.step_written = {a for flow in flows.values() for a in flow.writes}
    for _ in range(8):
        flows = {id(f): _safe_analyze(f, lib) for f in functions if not stubs[id(f)]}
        real = {a for flow in flows.values() for a, is_real in flow.writes.items() if is_real}
        real &= lib.step_written
        real_globals = {g for flow in flows.values() for g, is_real in flow.global_writes.items() if is_real}
        if real <= lib.real_valued and real_globals <= lib.real_globals:
            break
        lib.real_valued |= real
        lib.real_globals |= real_globals
    for func in functions:
        if stubs[id(func)]:
            func.verdict, func.reasons = STUB, [stubs[id(func)], *func.reasons]
            continue
        flow = flows[id(func)]
        if flow.real or flow.real_reads:
            evidence = flow.real[:2] + [f"reads {r}" for r in dict.fromkeys(flow.real_reads)][:2]
            func.verdict, func.reasons = IMPLEMENTED, [*evidence[:3], *func.reasons]
        else:
            func.verdict, func.reasons = HOLLOW, [*hollow_reasons(flow), *func.reasons]
