"""The data behind the verdicts (``rules.toml``), with lookups by qualified name and fixture name.

A suite may add or override entries in its own ``pyproject.toml`` under ``[tool.stub_report.rules]``
(same tables as ``rules.toml``), e.g. to name its product's client library or a plugin fixture.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).with_name("rules.toml")
STDLIB = frozenset(sys.stdlib_module_names) | {"builtins"}


@dataclass(frozen=True)
class Rule:
    id: str
    effect: str  # real | inert | mock | output | pending | path
    text: str


@dataclass
class Rules:
    rules: dict[str, Rule]
    names: dict[str, str]
    fixtures: dict[str, str]
    pending_exceptions: frozenset[str]
    pending_calls: frozenset[str]
    context_input: frozenset[str]
    context_inert_methods: frozenset[str]
    path_io: frozenset[str]
    captured: frozenset[str] = frozenset()
    captured_inert_methods: frozenset[str] = frozenset()
    writes: dict[str, str] = field(default_factory=dict)
    rust: dict[str, list[str]] = field(default_factory=dict)
    _memo: dict[str, Rule | None] = field(default_factory=dict)

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def for_name(self, qualname: str) -> Rule | None:
        """The rule for a qualified name; None when it is neither listed nor standard library."""
        if qualname in self._memo:
            return self._memo[qualname]
        found: Rule | None = None
        parts = qualname.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.names:
                found = self.rules[self.names[prefix]]
                break
        if found is None and parts[0] in STDLIB:
            found = self.rules["inert.stdlib"]
        self._memo[qualname] = found
        return found

    def builtin(self, name: str) -> Rule:
        return self.for_name(f"builtins.{name}") or self.rules["inert.builtin"]

    def fixture(self, name: str) -> Rule:
        return self.rules[self.fixtures.get(name, "real.fixture")]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            _merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


@cache
def _base() -> dict[str, Any]:
    with RULES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def load(extra: dict[str, Any] | None = None) -> Rules:
    data = _merge(_base(), extra or {})
    rules = {rid: Rule(rid, effect, text) for rid, (effect, text) in data["rules"].items()}
    ids = [*data["names"].values(), *data["fixtures"].values(), *data.get("writes", {}).values()]
    unknown = [r for r in ids if r not in rules]
    if unknown:
        raise ValueError(f"rules refer to unknown rule ids: {sorted(set(unknown))}")
    return Rules(
        rules=rules,
        names=dict(data["names"]),
        fixtures=dict(data["fixtures"]),
        pending_exceptions=frozenset(data["pending"]["exceptions"]),
        pending_calls=frozenset(data["pending"]["calls"]),
        context_input=frozenset(data["behave_context"]["input"]),
        context_inert_methods=frozenset(data["behave_context"]["inert_methods"]),
        path_io=frozenset(data["path_io"]["methods"]),
        captured=frozenset(data["behave_context"].get("captured", [])),
        captured_inert_methods=frozenset(data["behave_context"].get("captured_inert_methods", [])),
        writes=dict(data.get("writes", {})),
        rust={k: list(v) for k, v in data.get("rust", {}).items()},
    )
