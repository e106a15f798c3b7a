"""Which test state ever holds something real: the fixpoint over the slots and their writers, solved
once per suite on the summaries (shared by the Python and Rust classifiers)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .facts import Fact, R, SuiteFacts, Taint


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
