"""Why a step is hollow, in words (:func:`hollow_reasons`), and the per-scenario check that turns a step
real only by reading test state hollow where no step before it in its scenarios filled that state."""

from __future__ import annotations

from .facts import R, Summary, _only_delegates
from .fixpoint import Resolution, _filled
from .model import HOLLOW, IMPLEMENTED, Evidence, StepFunction


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
