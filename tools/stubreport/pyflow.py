"""The symbolic data flow through one Python function (:class:`Analyzer`): what each expression's value
carries, what each statement stores, and the test code's helpers and classes it follows."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .facts import EMPTY, REAL, WORLD, Fact, M, P, SuiteFacts, Summary, Taint
from .pycalls import CallAnalysis
from .pynodes import _key, _method, _root
from .pysource import ModuleInfo

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


# -- the analysis --------------------------------------------------------------------------------------
class Analyzer(CallAnalysis):
    MAX_STACK = 6

    def __init__(
        self,
        facts: SuiteFacts,
        module: ModuleInfo,
        world: set[str],
        params: dict[str, Taint],
        fixtures: set[str],
        stack: tuple[int, ...] = (),
    ) -> None:
        self.facts, self.rules, self.module = facts, facts.rules, module
        self.world = world
        self.locals: dict[str, Taint] = dict(params)
        self.fixtures = fixtures  # parameters that are pytest fixtures
        self.aliases: dict[str, str] = {}  # a helper's parameter -> the fixture the caller passed in
        self.global_names: set[str] = set()
        self.summary = Summary()
        self.stack = stack
        #: imports inside the function body (``import http.client`` in a fixture)
        self.imports: dict[str, str] = dict(module.imports)
        #: locals holding an instance of a class of the test code: its methods are followed
        self.instances: dict[str, tuple[ast.ClassDef, ModuleInfo]] = {}
        self._constructed: tuple[ast.ClassDef, ModuleInfo] | None = None

    # -- helpers -------------------------------------------------------------------------------
    def _evidence(self, rule: str, detail: str, node: ast.AST, cond: Taint = REAL) -> None:
        if cond:
            self.summary.evidence.append(Fact(rule, detail, getattr(node, "lineno", 0), cond))

    def _note(self, rule: str, detail: str, node: ast.AST) -> None:
        self.summary.notes.append(Fact(rule, detail, getattr(node, "lineno", 0)))

    def _slot_read(self, slot: str, label: str, node: ast.AST) -> Taint:
        self.summary.reads.append((slot, getattr(node, "lineno", 0)))
        cond = frozenset({f"s:{slot}"})
        rule = "real.fixture" if slot.startswith("fx:") and "." not in slot[3:] else "real.state"
        self._evidence(rule, f"reads {label}", node, cond)
        return cond

    def _world_slot(self, attr: str) -> str:
        return f"w.{attr}"

    # -- expressions ---------------------------------------------------------------------------
    def taint(self, node: ast.AST | None) -> Taint:
        if node is None or isinstance(node, ast.Constant):
            return EMPTY
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute | ast.Subscript):
            return self._access(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Lambda):
            return self.taint(node.body)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            for gen in node.generators:
                self._assign(gen.target, self.taint(gen.iter))
                for cond in gen.ifs:
                    self.taint(cond)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            out = EMPTY
            for part in parts:
                out |= self.taint(part)
            for gen in node.generators:
                out |= self.taint(gen.iter)
            return out
        if isinstance(node, ast.NamedExpr):
            value = self.taint(node.value)
            self._assign(node.target, value)
            return value
        out = EMPTY
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                out |= self.taint(child)
        return out

    def _name(self, node: ast.Name) -> Taint:
        name = node.id
        if name in self.locals:
            return self.locals[name]
        if name in self.world:
            return WORLD
        if name in self.fixtures:
            return self._fixture(name, node)
        if name in self.global_names or name in self.facts.module_globals(self.module):
            return self._global(self.module, name, node)
        qual = self.imports.get(name)
        if qual:
            module_name, _, attr = qual.rpartition(".")
            owner = self.facts.modules.get(module_name)
            if owner is not None and attr in self.facts.module_globals(owner):
                return self._global(owner, attr, node)
        return EMPTY

    def _fixture(self, name: str, node: ast.AST, key: str = "*") -> Taint:
        """A fixture's value: the fixture itself and what steps put into it under ``key``
        (``ctx["x"]`` is key ``[x]``, ``ctx.x`` is ``.x``, anything else ``*``)."""
        name = self.aliases.get(name, name)
        extra = EMPTY
        if name not in self.facts.fixtures and name not in self.facts.target_fixtures:
            effect = self.rules.fixture(name).effect
            extra = frozenset({M}) if effect == "mock" else frozenset({P}) if effect == "path" else EMPTY
        value = self._slot_read(f"fx:{name}", f"fixture {name}", node)
        label = f"fixture {name}{key}" if key != "*" else f"what steps stored in fixture {name}"
        value |= self._slot_read(f"fx:{name}.{key}", label, node)
        return value | extra

    def _global(self, module: ModuleInfo, name: str, node: ast.AST) -> Taint:
        return self._slot_read(f"g:{module.module_name}.{name}", f"module state {name}", node)

    def _access(self, node: ast.Attribute | ast.Subscript) -> Taint:
        if isinstance(node, ast.Subscript):
            self.taint(node.slice)
        root, first = _root(node)
        if isinstance(root, ast.Name) and first is not None and not self._has_call(node):
            if root.id in self.world:
                return self._world_read(root.id, first, node)
            if root.id in self.fixtures:
                return self._fixture(root.id, root, _key(node))
        return self.taint(node.value)

    @staticmethod
    def _has_call(node: ast.AST) -> bool:
        while isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        return isinstance(node, ast.Call)

    def _world_read(self, root: str, attr: str, node: ast.AST) -> Taint:
        if attr == "[]":
            return EMPTY
        if self.facts.runner == "behave" and attr in self.rules.captured:
            return self._slot_read(self._world_slot(attr), f"{root}.{attr} (what the run printed)", node)
        if self.facts.runner == "behave" and attr in self.rules.context_input:
            self._note("inert.input", f"reads {root}.{attr}", node)
            return EMPTY
        return self._slot_read(self._world_slot(attr), f"{root}.{attr}", node)

    def _construct(
        self,
        cls: ast.ClassDef,
        module: ModuleInfo,
        node: ast.Call,
        text: str,
        taints: list[Taint],
        argt: Taint,
    ) -> Taint:
        """An instance of a test-code class: its ``__init__`` runs now, its methods when called."""
        init = _method(cls, "__init__")
        out = argt
        if init is not None:
            out |= self._helper(init, module, node, text, taints, bound=True)
        self._constructed = (cls, module)
        return out

    def _helper(
        self,
        fn: ast.FunctionDef | ast.AsyncFunctionDef,
        module: ModuleInfo,
        call: ast.Call,
        text: str,
        arg_taints: list[Taint],
        bound: bool = False,
    ) -> Taint:
        if id(fn) in self.stack or len(self.stack) > self.MAX_STACK:
            return EMPTY
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
        if bound and params:
            params = params[1:]  # ``self``: the instance holds test state only
        world: set[str] = set()
        values: dict[str, Taint] = dict.fromkeys(params, EMPTY)
        passed = list(zip(params, call.args, strict=False)) + [(k.arg, k.value) for k in call.keywords]
        aliases: dict[str, str] = {}
        for (param, arg), taint in zip(passed, arg_taints, strict=False):
            if param is None:
                continue
            if taint == WORLD:  # the World itself, not a value that merely mixes it in
                world.add(param)
                values.pop(param, None)
            elif isinstance(arg, ast.Name) and arg.id in self.fixtures:  # the fixture itself, passed on
                aliases[param] = self.aliases.get(arg.id, arg.id)
                values.pop(param, None)
            else:
                values[param] = taint
        inner = Analyzer(self.facts, module, world, values, set(aliases), (*self.stack, id(fn)))
        inner.aliases = aliases
        inner.run(fn.body)
        self.summary.merge(inner.summary, f"calls {text}()")
        return inner.summary.returns | (
            REAL if inner.summary.evidence and not inner.summary.returns else EMPTY
        )

    # -- statements ----------------------------------------------------------------------------
    def _assign(self, target: ast.AST, value: Taint) -> None:
        if isinstance(target, ast.Name):
            if target.id in self.global_names:
                self.summary.write(f"g:{self.module.module_name}.{target.id}", value)
                self._note("inert.state", f"keeps module state {target.id}", target)
            else:
                self.locals[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._assign(elt, value)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, value)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            if isinstance(target, ast.Subscript):
                self.taint(target.slice)
            inner = target.value
            if self._has_call(inner) or isinstance(inner, ast.Call):
                self.taint(inner)  # ``host.file(x).content = ...``: the call in the target runs
            self._store(target, value, target)

    def run(self, body: Iterable[ast.stmt]) -> None:
        for stmt in body:
            self._stmt(stmt)

    def _returned(self, value: ast.expr | None) -> None:
        self._constructed = None
        self.summary.returns |= self.taint(value)
        if self._constructed is not None and isinstance(value, ast.Call):
            self.summary.returned_class = self._constructed
        elif isinstance(value, ast.Name) and value.id in self.instances:
            self.summary.returned_class = self.instances[value.id]

    def _stmt(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            self._constructed = None
            value = self.taint(stmt.value)
            constructed, self._constructed = self._constructed, None
            for target in stmt.targets:
                self._assign(target, value)
                if (
                    constructed is not None
                    and isinstance(target, ast.Name)
                    and isinstance(stmt.value, ast.Call)
                ):
                    self.instances[target.id] = constructed
        elif isinstance(stmt, ast.AugAssign):
            value = self.taint(stmt.value)
            if isinstance(stmt.target, ast.Name):
                value = value | self.locals.get(stmt.target.id, EMPTY)
            self._assign(stmt.target, value)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self._assign(stmt.target, self.taint(stmt.value))
        elif isinstance(stmt, ast.Assert):
            self.summary.asserts += 1
            self.taint(stmt.test)
            self.taint(stmt.msg)
        elif isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Yield | ast.YieldFrom):
                self._returned(value.value)
            else:
                self.taint(value)
        elif isinstance(stmt, ast.Return):
            self._returned(stmt.value)
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
            before = len(self.summary.evidence)
            self.run(stmt.body)
            raised = EMPTY  # an exception the try body's real calls may raise carries real data
            for fact in self.summary.evidence[before:]:
                raised |= fact.cond
            for handler in stmt.handlers:
                if handler.name:
                    self.locals[handler.name] = raised
                self.run(handler.body)
            self.run(stmt.orelse)
            self.run(stmt.finalbody)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            before = len(self.summary.evidence)
            for param in _param_names(stmt):  # a callback's arguments come from the code calling it back
                self.locals[param] = REAL
            self.run(stmt.body)
            self.locals[stmt.name] = REAL if len(self.summary.evidence) > before else EMPTY
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Attribute | ast.Subscript):
                    self._store(target, EMPTY, stmt)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                local = alias.asname or alias.name.split(".")[0]
                self.imports[local] = alias.name if alias.asname else local
                self.locals.pop(local, None)
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            for alias in stmt.names:
                self.imports[alias.asname or alias.name] = f"{stmt.module}.{alias.name}"
                self.locals.pop(alias.asname or alias.name, None)
        elif isinstance(stmt, ast.Global | ast.Nonlocal):
            self.global_names.update(stmt.names)
        elif isinstance(stmt, ast.Match):
            self.taint(stmt.subject)
            for case in stmt.cases:
                self.run(case.body)


def _param_names(node: FunctionNode) -> list[str]:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return names + [a.arg for a in (args.vararg, args.kwarg) if a is not None]
