"""Stub / hollow / implemented for Python steps, decided on the function's AST by what it touches.

**stub**: the body cannot pass: after the docstring, ``pass``, ``...`` and placeholder output nothing is
left, or what is left starts with a pending marker (``raise NotImplementedError``, ``pytest.skip()``,
``pending()``, ``context.scenario.skip()``; the names are in ``rules.toml``).

**implemented / hollow**: a symbolic data flow. Every value carries a *taint*: a set of atoms, ``R``
(certainly from outside the test process), ``s:<slot>`` (real if that piece of test state ever holds
something real), ``M`` (a mock) and ``P`` (a filesystem path). Calls are judged by the rules in
``rules.toml`` (I/O, processes, the network, a service's library, the product's own code: real; the
standard library, assertion helpers, the runner's API: inert; mocks; logging, printing, sleeping) and by
what they are called on (a fixture that is a client, the harness's World, a value read back from test
state). Helpers of the test code are followed.

*Slots* are the test state steps share: ``world.x``/``context.x`` attributes, pytest fixtures (and
what steps put in them), module globals. A slot is real when something real is ever stored in it
(by a step, a behave hook, a fixture function, a ``target_fixture`` step) or when the harness owns it;
that is a fixpoint over the whole suite, solved once on the summaries (no function is analysed twice).

A step is **implemented** when one of its facts is real after that fixpoint (a real call, or reading
state that holds something real); otherwise **hollow**, with what it does instead. The run-time trace
then overrides the static view (see :mod:`.trace`).
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .harness_facts import HarnessFacts
from .model import HOLLOW, IMPLEMENTED, STUB, Evidence, StepFunction
from .pyscan import ModuleInfo, qualified
from .rules import Rules

R, M, P = "R", "M", "P"
_BUILTINS = frozenset(dir(builtins))
Taint = frozenset[str]
EMPTY: Taint = frozenset()
REAL: Taint = frozenset({R})
WORLD: Taint = frozenset({"W"})  # the World/context object itself (passed to a helper)
_TODO = re.compile(r"\b(TODO|FIXME|XXX|TBD)\b")
MUTATORS = frozenset(
    {"append", "extend", "add", "update", "insert", "setdefault", "pop", "remove", "clear", "discard",
     "popitem", "appendleft", "extendleft", "sort", "reverse"}
)  # fmt: skip
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


def real_atoms(taint: Taint) -> Taint:
    return frozenset(a for a in taint if a == R or a.startswith("s:"))


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


# -- the suite's facts ---------------------------------------------------------------------------------
@dataclass
class Fact:
    """Something a function does: ``real`` facts count when ``cond`` resolves real after the fixpoint."""

    rule: str
    detail: str
    line: int
    cond: Taint = EMPTY


@dataclass
class Summary:
    evidence: list[Fact] = field(default_factory=list)  # real when their condition is
    notes: list[Fact] = field(default_factory=list)  # what it does instead (hollow reasons)
    writes: dict[str, list[Taint]] = field(default_factory=dict)
    reads: list[tuple[str, int]] = field(default_factory=list)
    returns: Taint = EMPTY
    asserts: int = 0
    returned_class: tuple[ast.ClassDef, ModuleInfo] | None = None  # ``return Host()``: an instance

    def write(self, slot: str, value: Taint) -> None:
        self.writes.setdefault(slot, []).append(value)

    def merge(self, other: Summary, prefix: str) -> None:
        for fact in other.evidence:
            self.evidence.append(Fact(fact.rule, f"{prefix} which {fact.detail}", fact.line, fact.cond))
        self.notes.extend(other.notes)
        for slot, values in other.writes.items():
            self.writes.setdefault(slot, []).extend(values)
        self.reads.extend(other.reads)


@dataclass
class SuiteFacts:
    """What the runner model knows about the suite, for the analysis."""

    rules: Rules
    runner: str  # registry | behave | pytest_bdd
    modules: dict[str, ModuleInfo]  # scanned test code, by dotted name
    harness: HarnessFacts | None = None
    harness_package: str | None = None
    suite_module: Callable[[str], bool] = lambda name: False  # a module of the suite's own code
    fixtures: dict[str, list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ModuleInfo]]] = field(
        default_factory=dict
    )
    target_fixtures: dict[str, list[StepFunction]] = field(default_factory=dict)
    hooks: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ModuleInfo]] = field(default_factory=list)
    #: fixtures whose value is an instance of a test-code class (a Host, a Page): methods are followed
    fixture_classes: dict[str, tuple[ast.ClassDef, ModuleInfo]] = field(default_factory=dict)
    #: behave's context.execute_steps("...") → the definitions those step lines run
    run_steps: Callable[[str], list[StepFunction]] | None = None
    _globals: dict[str, set[str]] = field(default_factory=dict)
    _global_taint: dict[str, Taint] = field(default_factory=dict)

    def module_globals(self, module: ModuleInfo) -> set[str]:
        if module.module_name not in self._globals:
            names: set[str] = set()
            for stmt in module.tree.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            self._globals[module.module_name] = names
        return self._globals[module.module_name]


# -- the analysis --------------------------------------------------------------------------------------
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


class Analyzer:
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

    def _args(self, node: ast.Call) -> tuple[list[ast.expr], list[Taint]]:
        args = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
        args += [k.value for k in node.keywords]
        return args, [self._passed(a) for a in args]

    def _passed(self, arg: ast.expr) -> Taint:
        """A fixture handed on as an argument is not read here (a helper reads what it needs of it)."""
        if isinstance(arg, ast.Name) and arg.id in self.fixtures:
            name = self.aliases.get(arg.id, arg.id)
            return frozenset({f"s:fx:{name}", f"s:fx:{name}.*"})
        return self.taint(arg)

    def _call(self, node: ast.Call) -> Taint:
        args, taints = self._args(node)
        argt = frozenset().union(*taints) if taints else EMPTY
        func = node.func
        root, chain = _chain(func)
        text = _callee_text(root, chain) if isinstance(root, ast.Name) else ast.unparse(func)
        if isinstance(root, ast.Name) and root.id in self.world and chain:
            return self._world_call(root.id, chain, argt, text, node, args)
        if isinstance(func, ast.Name):
            return self._name_call(func, args, taints, argt, node)
        if isinstance(func, ast.Attribute):
            qual = qualified(func, self.imports)
            if qual and isinstance(root, ast.Name) and root.id not in self.locals:
                return self._qualified_call(qual, text, args, taints, argt, node)
            return self._method_call(func, text, argt, node)
        base = self.taint(func)
        self._real_call(base, text, node)
        return base | argt

    def _real_call(self, base: Taint, text: str, node: ast.AST) -> None:
        cond = real_atoms(base)
        if cond:
            rule = "real.fixture" if any(a.startswith("s:fx:") for a in cond) else "real.state"
            if cond == REAL:
                rule = "real.data"
            self._evidence(rule, f"calls {text}()", node, cond)

    def _method_call(self, func: ast.Attribute, text: str, argt: Taint, node: ast.Call) -> Taint:
        method = func.attr
        if (
            isinstance(func.value, ast.Name)
            and func.value.id in self.fixtures
            and method in ("get", "pop", "setdefault")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):  # ``ctx.get("x")`` reads what was stored under "x"
            base = self._fixture(func.value.id, func.value, f"[{node.args[0].value}]")
            self._real_call(base, text, node)
            return base | argt
        owner_class = self._class_of(func.value)
        if owner_class is not None and (target := _method(owner_class[0], method)) is not None:
            # ``Command.run(...)``: a classmethod or staticmethod of the test code's own classes
            _, taints = self._args(node)
            static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in target.decorator_list)
            return self._helper(target, owner_class[1], node, text, taints, bound=not static)
        if isinstance(func.value, ast.Name) and func.value.id in self.instances:
            cls, owner = self.instances[func.value.id]
            target = _method(cls, method)
            if target is not None:
                _, taints = self._args(node)
                returned = self._helper(target, owner, node, text, taints, bound=True)
                base = self.taint(func.value)  # the instance itself may be a real handle too
                self._real_call(base, text, node)
                return returned | base
        target_root, _ = _root(func.value)
        base = self.taint(func.value)
        if method in MUTATORS and isinstance(target_root, ast.Name) and self._store(func.value, argt, node):
            return EMPTY
        if P in base and method in self.rules.path_io:
            self._evidence("real.io", f"calls {text}() on a filesystem path", node)
            return base | argt | REAL
        if M in base:
            self._note("mock.library", f"drives a mock ({text}())", node)
            return base | argt
        if method in LOG_METHODS and R not in base:
            self._note("output.log", f"logs ({text}())", node)
            return EMPTY
        self._real_call(base, text, node)
        return base | argt

    def _class_of(self, node: ast.AST) -> tuple[ast.ClassDef, ModuleInfo] | None:
        """The test-code class ``node`` names (``Command``, ``shell.Command``), if it is one."""
        if isinstance(node, ast.Name) and node.id not in self.locals:
            if node.id in self.module.classes:
                return self.module.classes[node.id], self.module
            qual = self.imports.get(node.id)
        else:
            qual = qualified(node, self.imports)
        if qual:
            module_name, _, name = qual.rpartition(".")
            owner = self.facts.modules.get(module_name)
            if owner is not None and name in owner.classes:
                return owner.classes[name], owner
        return None

    def _store(self, target: ast.AST, value: Taint, node: ast.AST) -> bool:
        """A mutation of a container (``x.append(v)``, ``x[k] = v``): test state gets ``value``."""
        root, first = _root(target)
        if not isinstance(root, ast.Name):
            return False
        name = root.id
        if name in self.world and first is not None and first != "[]":
            self.summary.write(self._world_slot(first), value)
            self._note("inert.state", f"sets {name}.{first}", node)
            return True
        if name in self.fixtures:
            self.summary.write(f"fx:{self.aliases.get(name, name)}.{_key(target)}", value)
            self._note("inert.state", f"sets {ast.unparse(target)} (fixture {name})", node)
            return True
        if name in self.locals:
            self.locals[name] = self.locals[name] | value
            return True
        if name in self.global_names or name in self.facts.module_globals(self.module):
            self.summary.write(f"g:{self.module.module_name}.{name}", value)
            self._note("inert.state", f"keeps module state {name}", node)
            return True
        qual = qualified(
            target if isinstance(target, ast.Attribute) else _strip_subscript(target), self.imports
        )
        if qual:
            rule = next(
                (
                    r
                    for prefix, r in self.rules.writes.items()
                    if qual == prefix or qual.startswith(prefix + ".")
                ),
                None,
            )
            if rule is not None:
                self._evidence(rule, f"sets {ast.unparse(target)}", node)
            else:
                self._note("inert.state", f"changes a library's module state ({ast.unparse(target)})", node)
            return True
        return False

    def _world_call(
        self, root: str, chain: list[str], argt: Taint, text: str, node: ast.Call, args: list[ast.expr]
    ) -> Taint:
        attr = chain[0]
        behave = self.facts.runner == "behave"
        if len(chain) == 1:
            if behave and attr in self.rules.context_inert_methods:
                return EMPTY
            if behave and attr == "execute_steps":
                return self._execute_steps(args, node)
            harness = self.facts.harness
            if harness is not None and attr in harness.inert_methods:
                self._note("inert.harness", f"calls {text}() (bookkeeping)", node)
                return EMPTY
            if harness is not None and (attr in harness.declared or harness.found_world):
                self._evidence("real.harness", f"calls {text}()", node)
                return REAL
            cond = self._slot_read(self._world_slot(attr), f"{root}.{attr}", node)
            return cond | argt
        if behave and attr in self.rules.captured and chain[-1] in self.rules.captured_inert_methods:
            self._note("inert.state", f"resets {root}.{attr} ({text}())", node)
            return EMPTY
        if behave and attr in self.rules.context_input:
            if chain[-1] == "skip":
                self._note("pending.marker", f"skips ({text}())", node)
            return EMPTY
        if chain[-1] in MUTATORS and len(chain) == 2:
            self.summary.write(self._world_slot(attr), argt)
            self._note("inert.state", f"sets {root}.{attr}", node)
            return EMPTY
        base = self._world_read(root, attr, node)
        if chain[-1] in LOG_METHODS and not argt:
            self._note("output.log", f"logs ({text}())", node)
        self._real_call(base, text, node)
        return base | argt

    def _execute_steps(self, args: list[ast.expr], node: ast.Call) -> Taint:
        text = args[0].value if args and isinstance(args[0], ast.Constant) else None
        if not isinstance(text, str) or self.facts.run_steps is None:
            self._evidence("real.steps", "runs steps it builds at run time (not analysed)", node)
            return REAL
        for func in self.facts.run_steps(text):
            self._evidence("real.steps", f"runs the step {func.name} ({func.where})", node,
                           frozenset({f"s:def:{func.where}"}))  # fmt: skip
        return EMPTY

    def _name_call(
        self, func: ast.Name, args: list[ast.expr], taints: list[Taint], argt: Taint, node: ast.Call
    ) -> Taint:
        name = func.id
        if name in self.locals or name in self.fixtures:
            base = self._name(func)
            if M in base:
                self._note("mock.library", f"drives a mock ({name}())", node)
                return base | argt
            self._real_call(base, name, node)
            return base | argt
        if name in self.module.functions:
            return self._helper(self.module.functions[name], self.module, node, name, taints)
        if name in self.module.classes:
            return self._construct(self.module.classes[name], self.module, node, name, taints, argt)
        qual = self.imports.get(name)
        if qual is None:
            for star in self.module.star_imports:
                owner = self.facts.modules.get(star)
                if owner is not None and name in owner.functions:
                    qual = f"{star}.{name}"
                    break
        if qual:
            return self._qualified_call(qual, name, args, taints, argt, node)
        if name in self.global_names or name in self.facts.module_globals(self.module):
            base = self._global(self.module, name, func)
            self._real_call(base, name, node)
            return base | argt
        if name in _BUILTINS:
            return self._apply_rule(self.rules.builtin(name).id, name, argt, node)
        if self.module.star_imports:  # from somewhere the star import brings in: not analysable here
            self._evidence("real.library", f"calls {name}() (from a star import)", node)
            return REAL | argt
        # a name nothing in the module binds (a fixture module, a conftest, an app's test utilities)
        self._evidence("real.library", f"calls {name}() (defined outside what the report reads)", node)
        return REAL | argt

    def _apply_rule(self, rule_id: str, text: str, argt: Taint, node: ast.AST) -> Taint:
        rule = self.rules.rule(rule_id)
        if rule.effect == "real":
            self._evidence(rule.id, f"calls {text}()", node)
            return REAL | argt
        if rule.effect == "mock":
            self._note(rule.id, f"builds or drives a mock ({text}())", node)
            return frozenset({M}) | argt
        if rule.effect == "output":
            self._note(rule.id, f"{rule.text} ({text}())", node)
            return EMPTY
        if rule.effect == "path":
            return frozenset({P}) | argt
        return argt  # inert (and pending in the middle of a body): values flow through

    def _qualified_call(
        self, qual: str, text: str, args: list[ast.expr], taints: list[Taint], argt: Taint, node: ast.Call
    ) -> Taint:
        rule = self.rules.for_name(qual)
        if rule is not None and not (rule.id == "inert.tooling" and self.facts.suite_module(qual)):
            return self._apply_rule(rule.id, text, argt, node)
        module_name, _, name = qual.rpartition(".")
        owner = self.facts.modules.get(module_name)
        if owner is not None:
            if name in owner.functions:
                return self._helper(owner.functions[name], owner, node, text, taints)
            if name in owner.classes:
                return self._construct(owner.classes[name], owner, node, text, taints, argt)
            if name in self.facts.module_globals(owner):
                base = self._global(owner, name, node)
                self._real_call(base, text, node)
                return base | argt
        top = qual.split(".")[0]
        if self.facts.harness_package and top == self.facts.harness_package:
            self._evidence("real.harness", f"calls {text}()", node)
            return REAL
        if self.facts.suite_module(qual) or owner is not None:
            self._evidence("real.product", f"calls {text}()", node)
            return REAL
        self._evidence("real.library", f"calls {text}()", node)
        return REAL

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


# -- per function ---------------------------------------------------------------------------------------
def _param_names(node: FunctionNode) -> list[str]:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return names + [a.arg for a in (args.vararg, args.kwarg) if a is not None]


_PARSE_FIELD = re.compile(r"\{([A-Za-z_]\w*)")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>")


def _pattern_fields(func: StepFunction) -> set[str]:
    fields: set[str] = set()
    for p in func.patterns:
        if p.text:
            fields |= set(_PARSE_FIELD.findall(p.text)) | set(_REGEX_GROUP.findall(p.text))
        converters = getattr(func, "converters", None)
        if isinstance(converters, dict):
            fields |= {k for k in converters if isinstance(k, str)}
    return fields


def _analyzer_for(func: StepFunction, facts: SuiteFacts) -> Analyzer:
    params = _param_names(func.node)
    if facts.runner in ("registry", "behave"):
        world = {params[0]} if params else set()
        inputs = dict.fromkeys(params[1:], EMPTY)
        return Analyzer(facts, func.module, world, inputs, set())
    fields = _pattern_fields(func) | {"datatable", "docstring", "step_name", "request"}
    inputs = {p: EMPTY for p in params if p in fields}
    fixtures = {p for p in params if p not in fields}
    analyzer = Analyzer(facts, func.module, set(), inputs, fixtures)
    analyzer.instances.update({p: facts.fixture_classes[p] for p in fixtures if p in facts.fixture_classes})
    return analyzer


def _run(analyzer: Analyzer, node: FunctionNode) -> Summary:
    try:
        if isinstance(node, ast.Lambda):
            analyzer.summary.returns |= analyzer.taint(node.body)
        else:
            analyzer.run(node.body)
    except RecursionError:
        analyzer.summary.evidence.append(
            Fact("real.library", "too deeply nested to analyse; assumed real", 0)
        )
    return analyzer.summary


def _writer_summary(
    facts: SuiteFacts, fn: ast.FunctionDef | ast.AsyncFunctionDef, module: ModuleInfo, world_first: bool
) -> Summary:
    params = _param_names(fn)
    if world_first:
        analyzer = Analyzer(facts, module, {params[0]} if params else set(), {}, set())
    else:
        analyzer = Analyzer(facts, module, set(), {}, set(params) - {"request"})
        analyzer.locals["request"] = EMPTY
    return _run(analyzer, fn)


@dataclass
class Resolution:
    """The fixpoint: which slots ever hold something real, and who writes them."""

    real: set[str] = field(default_factory=set)
    writers: dict[str, list[tuple[str, Taint]]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # real slot -> harness | unknown | fixture | written
    step_written: set[str] = field(default_factory=set)  # slots some step (or helper of one) writes

    def rule_for(self, fact: Fact) -> str:
        """The most telling rule for a real fact: who made the state it depends on real."""
        origins = {self.origin.get(a[2:]) for a in fact.cond if a.startswith("s:") and a[2:] in self.real}
        if R in fact.cond or fact.rule in ("real.io", "real.product", "real.steps"):
            return fact.rule
        if "harness" in origins:
            return "real.harness"
        if "fixture" in origins:
            return "real.fixture"
        return fact.rule

    def holds(self, cond: Taint) -> bool:
        return R in cond or any(a[2:] in self.real for a in cond if a.startswith("s:"))


def _default_real(slot: str, facts: SuiteFacts, written: bool) -> bool:
    if slot.startswith("w.") and facts.runner == "rust":
        return False  # a Rust World is plain data: real only when something real is stored in it
    if slot.startswith("w."):
        attr = slot[2:]
        if facts.harness is not None and attr in facts.harness.declared:
            return True
        if facts.runner == "behave" and attr in facts.rules.captured:
            return True  # what the code the steps ran printed
        if facts.runner == "behave" and attr in facts.rules.context_input:
            return False
        return not written  # nobody in the test code sets it: the harness (or a library) provides it
    if slot.startswith("fx:"):
        name = slot[3:]
        if "." in name:
            return False  # a fixture's contents: real through the fixture itself or what is stored (_resolve)
        if name in facts.fixtures or name in facts.target_fixtures:
            return False
        return facts.rules.fixture(name).effect == "real"
    if slot.startswith("g:"):
        return False
    return False


def _filled(slot: str, filled: set[str]) -> bool:
    if slot in filled:
        return True
    return slot.startswith("fx:") and "." in slot[3:] and _contents_real(slot, filled)


def _contents_real(slot: str, real: set[str]) -> bool:
    """``fx:ctx.[x]`` holds something real when the fixture itself is real, when something real was
    stored under an unknown key (``fx:ctx.*``), or (for an unknown key read) under any key."""
    root, _, key = slot.partition(".")
    if root in real or f"{root}.*" in real:
        return True
    return key == "*" and any(s.startswith(root + ".") for s in real)


def _resolve(writes: dict[str, list[tuple[str, Taint]]], facts: SuiteFacts, slots: set[str]) -> Resolution:
    res = Resolution(writers=writes)
    for slot in slots:
        if _default_real(slot, facts, slot in writes):
            res.real.add(slot)
            harness = facts.harness is not None and slot[2:] in facts.harness.declared
            res.origin[slot] = "fixture" if slot.startswith("fx:") else "harness" if harness else "unknown"
    changed = True
    while changed:
        changed = False
        for slot in slots - res.real:
            real = any(res.holds(t) for _, t in writes.get(slot, ()))
            if not real and slot.startswith("fx:") and "." in slot[3:]:
                real = _contents_real(slot, res.real)
            if real:
                res.real.add(slot)
                res.origin[slot] = "written"
                changed = True
    return res


def classify_all(functions: list[StepFunction], facts: SuiteFacts) -> Resolution:
    """Set ``verdict``/``reasons``/``evidence`` on every function (usage comes later)."""
    stubs = {id(f): stub_reason(f, facts.rules) for f in functions}
    summaries: dict[int, Summary] = {}
    writes: dict[str, list[tuple[str, Taint]]] = {}

    def record(who: str, summary: Summary) -> None:
        ran = real_atoms_of(summary)  # a mock the real code calls is a spy: what it records is real
        for slot, values in summary.writes.items():
            values[:] = [v | ran if M in v else v for v in values]
            writes.setdefault(slot, []).extend((who, v) for v in values)

    for name, definitions in facts.fixtures.items():
        for fn, module in definitions:
            summary = _writer_summary(facts, fn, module, world_first=False)
            record(f"{module.display}:{fn.lineno}", summary)
            writes.setdefault(f"fx:{name}", []).append(
                (f"{module.display}:{fn.lineno}", summary.returns | real_atoms_of(summary))
            )
            if summary.returned_class is not None:
                facts.fixture_classes[name] = summary.returned_class
    for func in functions:
        if stubs[id(func)]:
            continue
        summary = summaries[id(func)] = func.summary = _run(_analyzer_for(func, facts), func.node)
        target = getattr(func, "target_fixture", None)
        if target:  # the step's return value becomes the fixture
            summary.write(f"fx:{target}", summary.returns)
        record(func.where, summary)
    for fn, module in facts.hooks:
        record(f"{module.display}:{fn.lineno}", _writer_summary(facts, fn, module, world_first=True))
    for module in facts.modules.values():
        for stmt in module.tree.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names:
                    value = _run_expr(facts, module, stmt.value)
                    for name in names:
                        writes.setdefault(f"g:{module.module_name}.{name}", []).append(
                            (f"{module.display}:{stmt.lineno}", value)
                        )
    slots = set(writes)
    for summary in summaries.values():
        for fact in summary.evidence:
            slots |= {a[2:] for a in fact.cond if a.startswith("s:")}
    res = _resolve(writes, facts, slots)
    res.step_written = {slot for summary in summaries.values() for slot in summary.writes}
    for func in functions:
        if id(func) in summaries:
            _verdict(func, summaries[id(func)], res, facts)
        else:
            func.verdict, func.reasons = STUB, [stubs[id(func)] or "", *func.reasons]
            func.evidence = [Evidence("pending.marker", stubs[id(func)] or "")]
    _settle_delegates(functions, summaries, res)
    return res


def real_atoms_of(summary: Summary) -> Taint:
    """A fixture that *does* something real (starts a server, opens a client) is real itself."""
    out = EMPTY
    for fact in summary.evidence:
        out |= fact.cond
    return out


def _run_expr(facts: SuiteFacts, module: ModuleInfo, node: ast.AST) -> Taint:
    analyzer = Analyzer(facts, module, set(), {}, set())
    try:
        return analyzer.taint(node) | (
            REAL if any(f.cond == REAL for f in analyzer.summary.evidence) else EMPTY
        )
    except RecursionError:
        return EMPTY


def _verdict(func: StepFunction, summary: Summary, res: Resolution, facts: SuiteFacts) -> None:
    real = [f for f in summary.evidence if res.holds(f.cond) and not _only_delegates(f)]
    real.sort(key=lambda f: (_STRENGTH.get(f.rule, 9), f.detail.count(" which ")))
    pending_delegates = [f for f in summary.evidence if _only_delegates(f)]
    if real:
        func.verdict = IMPLEMENTED
        func.evidence = list(dict.fromkeys(Evidence(res.rule_for(f), f.detail, f.line) for f in real))
        func.reasons = [*dict.fromkeys(f.detail for f in real)][:3] + func.reasons
        return
    func.verdict = HOLLOW
    func.evidence = [Evidence(f.rule, f.detail, f.line) for f in summary.notes]
    func.evidence += [Evidence(f.rule, f.detail, f.line) for f in pending_delegates]
    func.reasons = [*hollow_reasons(func, summary, res), *func.reasons]


def delegated(func: StepFunction) -> list[str]:
    """The definitions (by location) a step runs through behave's ``execute_steps``."""
    summary = func.summary
    if summary is None:
        return []
    return [a[6:] for f in summary.evidence if _only_delegates(f) for a in f.cond]


#: how telling a kind of evidence is, for the order of the reasons (direct touches first)
_STRENGTH = {"real.io": 0, "real.product": 0, "real.harness": 0, "real.library": 1, "real.fixture": 2,
             "real.steps": 3, "real.state": 4, "real.data": 5}  # fmt: skip


def _only_delegates(fact: Fact) -> bool:
    return bool(fact.cond) and all(a.startswith("s:def:") for a in fact.cond)


def _settle_delegates(functions: list[StepFunction], summaries: dict[int, Summary], res: Resolution) -> None:
    """``context.execute_steps`` runs other definitions: real when one of them is (a small fixpoint)."""
    by_where = {f.where: f for f in functions}
    changed = True
    while changed:
        changed = False
        for func in functions:
            if func.verdict != HOLLOW or id(func) not in summaries:
                continue
            for fact in summaries[id(func)].evidence:
                if not _only_delegates(fact):
                    continue
                targets = [by_where.get(a[6:]) for a in fact.cond]
                if any(t is not None and t.verdict == IMPLEMENTED for t in targets):
                    func.verdict = IMPLEMENTED
                    func.evidence = [Evidence(fact.rule, fact.detail, fact.line)]
                    func.reasons = [fact.detail]
                    changed = True
                    break


def hollow_reasons(func: StepFunction, summary: Summary, res: Resolution) -> list[str]:
    reasons: list[str] = []
    sets = sorted(
        {n.detail[5:] for n in summary.notes if n.rule == "inert.state" and n.detail.startswith("sets ")}
    )
    if sets:
        reasons.append("only sets " + ", ".join(sets))
    reads = sorted({slot for slot, _ in summary.reads if slot not in res.real and slot in res.step_written})
    written_here = set(summary.writes)
    own = [s for s in reads if s in written_here]
    others = [s for s in reads if s not in written_here]
    if own and summary.asserts:
        reasons.append("asserts on values it set itself (" + ", ".join(_label(s) for s in own) + ")")
    if others:
        reasons.append(
            "reads only test state that nothing real fills (" + ", ".join(_label(s) for s in others) + ")"
        )
    if not reads and summary.asserts:
        reasons.append("asserts only on its own values or the feature's input")
    for rule in ("mock.library", "output.log", "output.print", "output.sleep", "output.fake-touch",
                 "inert.harness", "pending.marker"):  # fmt: skip
        details = [n.detail for n in summary.notes if n.rule == rule]
        if details:
            reasons.append(details[0] if len(details) == 1 else f"{details[0]} (+{len(details) - 1} more)")
    globals_kept = sorted({n.detail for n in summary.notes if n.detail.startswith("keeps module state")})
    reasons.extend(globals_kept[:1])
    if not reasons:
        reasons.append("does nothing that reaches outside the test process")
    return [r if i else f"touches nothing real: {r}" for i, r in enumerate(reasons)]


def _label(slot: str) -> str:
    if slot.startswith("w."):
        return slot[2:]
    if slot.startswith("fx:"):
        return f"fixture {slot[3:].replace('.*', '').replace('.[', '[')}"
    if slot.startswith("g:"):
        return slot[2:]
    return slot


# -- per scenario --------------------------------------------------------------------------------------
def refine_by_scenario(
    functions: list[StepFunction], res: Resolution, sequences: list[list[StepFunction]]
) -> None:
    """A step that is real only by reading test state: real only if, in a scenario where it runs, a step
    before it (or a hook, fixture or the harness) put something real there.

    ``world.worker_pids`` may hold real pids in one feature and numbers a When step made up in another:
    the Then step that checks it in the second feature checks nothing. ``sequences`` are the runs: the
    definitions each scenario runs, in order.
    """
    step_wheres = {f.where for f in functions}
    standing = {slot for slot in res.real if res.origin.get(slot) != "written"}
    for slot, writers in res.writers.items():
        if any(who not in step_wheres and res.holds(t) for who, t in writers):
            standing.add(slot)
    real_writes: dict[int, set[str]] = {}
    for func in functions:
        summary = func.summary
        if summary is not None:
            real_writes[id(func)] = {s for s, ts in summary.writes.items() if any(res.holds(t) for t in ts)}
    # what each implemented step needs: None when one of its facts is real whatever ran before it
    needs: dict[int, list[list[str]] | None] = {}
    for func in functions:
        if func.summary is None or func.verdict != IMPLEMENTED:
            continue
        facts = func.summary.evidence
        if any(R in f.cond or _only_delegates(f) for f in facts):
            needs[id(func)] = None
        else:
            needs[id(func)] = [[a[2:] for a in f.cond if a.startswith("s:")] for f in facts]
    effective: dict[int, bool] = {k: True for k, v in needs.items() if v is None}
    for sequence in sequences:
        filled = set(standing)
        for func in sequence:
            key = id(func)
            if key in needs and not effective.get(key):
                effective[key] = any(_filled(slot, filled) for slots in needs[key] or [] for slot in slots)
            written = real_writes.get(key)
            if written:
                filled |= written
    for func in functions:
        if func.verdict != IMPLEMENTED or effective.get(id(func), True):
            continue
        summary = func.summary
        slots = sorted({a[2:] for f in summary.evidence for a in f.cond if a.startswith("s:")})
        func.verdict = HOLLOW
        func.reasons = [
            "touches nothing real in the scenarios that run it: the state it reads ("
            + ", ".join(_label(s) for s in slots)
            + ") only ever comes from steps that put test values there",
            *[r for r in func.reasons if not r.startswith(("reads ", "calls "))],
        ]
        func.evidence = [
            Evidence("inert.state", f"reads {_label(s)} (made up earlier in its scenarios)") for s in slots
        ]
