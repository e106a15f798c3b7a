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
import re

from .facts import _STRENGTH, EMPTY, REAL, Fact, M, SuiteFacts, Summary, Taint, _only_delegates
from .fixpoint import Resolution, _resolve
from .hollow import hollow_reasons
from .model import HOLLOW, IMPLEMENTED, STUB, Evidence, StepFunction
from .pyflow import Analyzer, FunctionNode, _param_names
from .pysource import ModuleInfo
from .pystubs import stub_reason

# -- per function ---------------------------------------------------------------------------------------
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
