"""Stub / hollow / implemented for Rust ``cucumber`` steps, on the tree-sitter syntax tree.

The same model as :mod:`.classify`: a **stub** is an empty body, a TODO-only body or one that reaches
``todo!()``/``unimplemented!()`` after nothing but logging; otherwise a step is **implemented** when
it reaches something outside the test process (``std::fs``, ``std::process``/``tokio::process``, the
network, ``reqwest``, a crate of the product, any unlisted external crate) or reads a World field that
something real filled, and **hollow** when it only sets World fields, logs, sleeps, builds values or
asserts on fields steps set. The lists are the ``[rust]`` table of ``rules.toml``. Calls to the suite's
own functions and ``impl World`` methods are followed; ``World::new``/``Default`` are the fields'
first writers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .facts import _STRENGTH, EMPTY, REAL, Fact, SuiteFacts, Summary, real_atoms
from .fixpoint import Resolution, _resolve
from .hollow import hollow_reasons
from .model import HOLLOW, IMPLEMENTED, STUB, Evidence, StepFunction
from .rules import Rules
from .rustscan import RustModule, parser

M = "M"
Taint = frozenset[str]


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace")


def _path(node: Any) -> str:
    """``tokio::process::Command::new`` from a path node (generic arguments dropped)."""
    return re.sub(r"::<.*?>", "", re.sub(r"\s+", "", _text(node)))


@dataclass
class RustFacts:
    rules: Rules
    functions: dict[str, list[tuple[Any, RustModule]]] = field(default_factory=dict)
    world_methods: dict[str, tuple[Any, RustModule]] = field(default_factory=dict)
    world_inits: list[tuple[Any, RustModule]] = field(default_factory=list)  # World::new / Default
    local_modules: set[str] = field(default_factory=set)  # first path segments of the suite's own code
    dependencies: dict[str, str] = field(default_factory=dict)  # crate -> "library" | "product"
    local_types: set[str] = field(default_factory=set)  # types the suite's own code defines
    impls: dict[str, dict[str, tuple[Any, RustModule]]] = field(default_factory=dict)  # type -> fn -> def

    def data(self, key: str) -> list[str]:
        return self.rules.rust.get(key, [])


def _prefix(path: str, entries: Iterable[str]) -> str | None:
    segments = path.split("::")
    for entry in sorted(entries, key=len, reverse=True):
        parts = entry.split("::")
        if segments[: len(parts)] == parts:
            return entry
        if len(parts) == 2 and len(segments) >= 2 and segments[-2:] == parts:
            return entry  # "Command::new" wherever Command was imported from
    return None


class RustAnalyzer:
    MAX_STACK = 6

    def __init__(
        self, facts: RustFacts, module: RustModule, world: set[str], stack: tuple[int, ...] = ()
    ) -> None:
        self.facts, self.module, self.world, self.stack = facts, module, world, stack
        self.locals: dict[str, Taint] = {}
        self.summary = Summary()

    def _evidence(self, rule: str, detail: str, node: Any, cond: Taint = REAL) -> None:
        if cond:
            self.summary.evidence.append(Fact(rule, detail, node.start_point[0] + 1, cond))

    def _note(self, rule: str, detail: str, node: Any) -> None:
        self.summary.notes.append(Fact(rule, detail, node.start_point[0] + 1))

    def _world_root(self, node: Any) -> tuple[str, str] | None:
        """``(world, field)`` when ``node`` is ``world.field...`` (fields and method receivers)."""
        chain: list[str] = []
        while node.type == "field_expression":
            fld = node.child_by_field_name("field")
            chain.append(_text(fld) if fld is not None else "")
            node = node.child_by_field_name("value")
        if node.type in ("identifier", "self") and _text(node) in self.world and chain:
            return _text(node), chain[-1]
        return None

    def _read(self, root: str, name: str, node: Any) -> Taint:
        slot = f"w.{name}"
        self.summary.reads.append((slot, node.start_point[0] + 1))
        cond = frozenset({f"s:{slot}"})
        self._evidence("real.state", f"reads {root}.{name}", node, cond)
        return cond

    # -- expressions ---------------------------------------------------------------------------
    def eval(self, node: Any | None) -> Taint:
        if node is None:
            return EMPTY
        kind = node.type
        if kind in ("identifier", "self"):
            name = _text(node)
            if name in self.locals:
                return self.locals[name]
            return frozenset({"W"}) if name in self.world else EMPTY
        if kind == "field_expression":
            found = self._world_root(node)
            if found is not None:
                return self._read(found[0], found[1], node)
            return self.eval(node.child_by_field_name("value"))
        if kind == "call_expression":
            return self._call(node)
        if kind == "macro_invocation":
            return self._macro(node)
        if kind == "let_declaration":
            value = self.eval(node.child_by_field_name("value"))
            self._bind(node.child_by_field_name("pattern"), value)
            alternative = node.child_by_field_name("alternative")
            if alternative is not None:
                self.eval(alternative)
            return EMPTY
        if kind in ("assignment_expression", "compound_assignment_expr"):
            value = self.eval(node.child_by_field_name("right"))
            self._assign(node.child_by_field_name("left"), value, node)
            return EMPTY
        if kind == "return_expression":
            value = EMPTY
            for child in node.named_children:
                value |= self.eval(child)
            self.summary.returns |= value
            return value
        if kind == "for_expression":
            self._bind(node.child_by_field_name("pattern"), self.eval(node.child_by_field_name("value")))
            return self.eval(node.child_by_field_name("body"))
        if kind in ("string_literal", "raw_string_literal", "integer_literal", "float_literal",
                    "boolean_literal", "char_literal", "line_comment", "block_comment"):  # fmt: skip
            return EMPTY
        out = EMPTY
        for child in node.named_children:
            out |= self.eval(child)
        return out

    def _bind(self, pattern: Any | None, value: Taint) -> None:
        if pattern is None:
            return
        if pattern.type == "identifier":
            self.locals[_text(pattern)] = value
            return
        for child in pattern.named_children:
            self._bind(child, value)

    def _assign(self, left: Any | None, value: Taint, node: Any) -> None:
        if left is None:
            return
        found = self._world_root(left) if left.type == "field_expression" else None
        if left.type == "index_expression":
            target = left.named_children[0] if left.named_children else None
            found = (
                self._world_root(target) if target is not None and target.type == "field_expression" else None
            )
        if found is not None:
            self.summary.write(f"w.{found[1]}", value)
            self._note("inert.state", f"sets {found[0]}.{found[1]}", node)
            return
        if left.type == "identifier":
            name = _text(left)
            self.locals[name] = self.locals.get(name, EMPTY) | value
            return
        root = left
        while root.type in ("field_expression", "index_expression", "unary_expression"):
            root = root.named_children[0]
        if root.type == "identifier" and _text(root) in self.locals:
            self.locals[_text(root)] |= value

    def _call(self, node: Any) -> Taint:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        argt = EMPTY
        arg_taints: list[Taint] = []
        for arg in arguments.named_children if arguments is not None else []:
            taint = self.eval(arg)
            arg_taints.append(taint)
            argt |= taint
        if function is None:
            return argt
        if function.type == "field_expression":
            return self._method(function, argt, arg_taints, node)
        if function.type == "generic_function":
            function = function.child_by_field_name("function") or function
        return self._path_call(_path(function), argt, arg_taints, node)

    def _method(self, function: Any, argt: Taint, arg_taints: list[Taint], node: Any) -> Taint:
        receiver = function.child_by_field_name("value")
        method = _text(function.child_by_field_name("field"))
        if receiver.type in ("identifier", "self") and _text(receiver) in self.world:
            target = self.facts.world_methods.get(method)
            if target is not None:
                return self._helper(
                    target[0], target[1], [frozenset({"W"}), *arg_taints], f"{_text(receiver)}.{method}"
                )
            return argt
        found = self._world_root(receiver) if receiver.type == "field_expression" else None
        if found is not None and method in self.facts.data("mutators"):
            self.summary.write(f"w.{found[1]}", argt)
            self._note("inert.state", f"sets {found[0]}.{found[1]}", node)
            return EMPTY
        base = self.eval(receiver)
        if M in base:
            self._note("mock.library", f"drives a mock (.{method}())", node)
            return base | argt
        cond = real_atoms(base)
        if cond:
            rule = "real.data" if cond == REAL else "real.state"
            self._evidence(rule, f"calls {_short(_text(function))}()", node, cond)
        return base | argt

    def _path_call(self, path: str, argt: Taint, arg_taints: list[Taint], node: Any) -> Taint:
        segments = path.split("::")
        head = segments[0]
        if head in self.module.uses:
            path = self.module.uses[head] + ("::" + "::".join(segments[1:]) if len(segments) > 1 else "")
            segments = path.split("::")
        lowered = path.lower()
        if any(marker in lowered for marker in self.facts.data("mock_markers")):
            self._note("mock.library", f"drives a mock ({path}())", node)
            return frozenset({M}) | argt
        if _prefix(path, self.facts.data("sleep")) or segments[-1] == "sleep":
            self._note("output.sleep", f"sleeps ({path}())", node)
            return EMPTY
        if _prefix(path, self.facts.data("real")):
            self._evidence("real.io", f"calls {path}()", node)
            return REAL | argt
        name = segments[-1]
        dependency = self.facts.dependencies.get(segments[0].replace("-", "_"))
        local = dependency is None and (
            segments[0] in ("crate", "self", "super")
            or len(segments) == 1
            or segments[0] in self.facts.local_modules
        )
        owner_type = segments[-2] if len(segments) > 1 else ""
        method = self.facts.impls.get(owner_type, {}).get(name) if dependency is None else None
        if method is not None:  # ``Registry::new()`` of a type the suite defines: followed
            return self._helper(method[0], method[1], arg_taints, path)
        if local and name in self.facts.functions:
            fn, module = self.facts.functions[name][0]
            return self._helper(fn, module, arg_taints, path)
        if segments[0] in self.facts.data("inert_names") or name in self.facts.data("inert_names"):
            return argt
        if _prefix(path, self.facts.data("inert_crates")):
            return argt
        if dependency is not None:
            rule = "real.product" if dependency == "product" else "real.library"
            self._evidence(rule, f"calls {path}()", node)
            return REAL | argt
        owner_type = segments[-2] if len(segments) > 1 else segments[0]
        if owner_type in self.facts.local_types or (segments[0] in ("Self", "crate", "self", "super")):
            return argt  # a constructor or associated function of the suite's own types
        self._evidence("real.product", f"calls {path}()", node)
        return REAL | argt

    def _macro(self, node: Any) -> Taint:
        macro = node.child_by_field_name("macro")
        name = _text(macro).split("::")[-1] if macro is not None else ""
        if name in self.facts.data("output_macros"):
            self._note("output.log", f"logs ({_text(macro)}!)", node)
            return EMPTY
        if name in self.facts.data("pending_macros"):
            self._note("pending.marker", f"{name}!()", node)
            return EMPTY
        if name in self.facts.data("assert_macros"):
            self.summary.asserts += 1
        return self._macro_args(node)

    def _macro_args(self, node: Any) -> Taint:
        tree = next((c for c in node.children if c.type == "token_tree"), None)
        if tree is None:
            return EMPTY
        inner = _text(tree)[1:-1]
        wrapped = f"fn __m() {{ __f({inner}); }}".encode()
        parsed = parser().parse(wrapped).root_node
        call = _find(parsed, "call_expression")
        if call is None:
            return EMPTY
        args = call.child_by_field_name("arguments")
        out = EMPTY
        for arg in args.named_children if args is not None else []:
            out |= self.eval(arg)
        return out

    def _helper(self, fn: Any, module: RustModule, taints: list[Taint], text: str) -> Taint:
        if id(fn) in self.stack or len(self.stack) > self.MAX_STACK:
            return EMPTY
        params = _param_names(fn)
        world = {p for p, t in zip(params, taints, strict=False) if t == frozenset({"W"})}
        inner = RustAnalyzer(self.facts, module, world, (*self.stack, id(fn)))
        for param, taint in zip(params, taints, strict=False):
            if param not in world:
                inner.locals[param] = taint
        body = fn.child_by_field_name("body")
        if body is not None:
            inner.summary.returns |= inner.eval(body)
        self.summary.merge(inner.summary, f"calls {text}()")
        out = inner.summary.returns
        for fact in inner.summary.evidence:
            out |= fact.cond
        return out


def _short(text: str) -> str:
    text = re.sub(r"\s+", "", text)
    return text if len(text) <= 60 else text[:57] + "..."


def _find(node: Any, kind: str) -> Any:
    if node.type == kind:
        return node
    for child in node.children:
        found = _find(child, kind)
        if found is not None:
            return found
    return None


def _param_names(fn: Any) -> list[str]:
    params = fn.child_by_field_name("parameters")
    names: list[str] = []
    for child in params.named_children if params is not None else []:
        if child.type == "parameter":
            pattern = child.child_by_field_name("pattern")
            text = _text(pattern) if pattern is not None else "_"
            names.append(text.replace("mut ", "").strip())
        elif child.type == "self_parameter":
            names.append("self")
    return names


# -- stubs ---------------------------------------------------------------------------------------------
def _statements(body: Any) -> list[Any]:
    return [c for c in body.named_children if c.type not in ("line_comment", "block_comment")]


def _macro_name(node: Any) -> str | None:
    target = node.named_children[0] if node.type == "expression_statement" and node.named_children else node
    if target.type != "macro_invocation":
        return None
    macro = target.child_by_field_name("macro")
    return _text(macro).split("::")[-1] if macro is not None else None


def stub_reason(func: StepFunction, rules: Rules) -> str | None:
    body = func.node.child_by_field_name("body")
    if body is None:
        return "no body"
    statements = _statements(body)
    output = set(rules.rust.get("output_macros", []))
    pending = set(rules.rust.get("pending_macros", []))
    if not statements:
        comments = " ".join(_text(c) for c in body.named_children)
        return "TODO-only body" if re.search(r"\bTODO\b|\bFIXME\b", comments) else "empty body"
    for stmt in statements:
        name = _macro_name(stmt)
        if name in output:
            continue
        if name in pending:
            return f"{name}!()"
        if name == "panic":
            text = _text(stmt).lower()
            if "not implemented" in text or "todo" in text:
                return 'panic!("not implemented")'
        return None
    return None  # only logging: it runs, so it is hollow, not pending


# -- the suite -----------------------------------------------------------------------------------------
def classify_all(functions: list[StepFunction], facts: RustFacts, modules: list[RustModule]) -> Resolution:
    stubs = {id(f): stub_reason(f, facts.rules) for f in functions}
    summaries: dict[int, Summary] = {}
    writes: dict[str, list[tuple[str, Taint]]] = {}
    for func in functions:
        if stubs[id(func)]:
            continue
        params = _param_names(func.node)
        analyzer = RustAnalyzer(facts, func.module, {params[0]} if params else set())
        body = func.node.child_by_field_name("body")
        analyzer.eval(body)
        summaries[id(func)] = func.summary = analyzer.summary
        for slot, values in analyzer.summary.writes.items():
            writes.setdefault(slot, []).extend((func.where, v) for v in values)
    for init, module in facts.world_inits:
        analyzer = RustAnalyzer(facts, module, {"self"})
        for struct in _all(init, "field_initializer"):  # Self { client: reqwest::Client::new(), .. }
            name_node = struct.child_by_field_name("field")
            value = analyzer.eval(struct.child_by_field_name("value"))
            if name_node is not None:
                writes.setdefault(f"w.{_text(name_node)}", []).append(
                    (f"{module.display}:{init.start_point[0] + 1}", value)
                )
    slots = set(writes)
    for summary in summaries.values():
        for fact in summary.evidence:
            slots |= {a[2:] for a in fact.cond if a.startswith("s:")}
    res = _resolve(writes, SuiteFacts(rules=facts.rules, runner="rust", modules={}), slots)
    res.step_written = {slot for summary in summaries.values() for slot in summary.writes}
    for func in functions:
        reason = stubs[id(func)]
        if reason:
            func.verdict, func.reasons = STUB, [reason, *func.reasons]
            func.evidence = [Evidence("pending.marker", reason)]
            continue
        summary = summaries[id(func)]
        real = [f for f in summary.evidence if res.holds(f.cond)]
        real.sort(key=lambda f: (_STRENGTH.get(f.rule, 9), f.detail.count(" which ")))
        if real:
            func.verdict = IMPLEMENTED
            func.evidence = [Evidence(f.rule, f.detail, f.line) for f in real]
            func.reasons = [*dict.fromkeys(f.detail for f in real)][:3] + func.reasons
        else:
            func.verdict = HOLLOW
            func.evidence = [Evidence(f.rule, f.detail, f.line) for f in summary.notes]
            func.reasons = [*hollow_reasons(func, summary, res), *func.reasons]
    return res


def _all(node: Any, kind: str) -> list[Any]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found.extend(_all(child, kind))
    return found
