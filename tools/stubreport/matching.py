"""Match feature steps to step definitions with the runners' own matchers.

- registry: ``parse.compile(pattern, extra_types=CUSTOM_TYPES, case_sensitive=True)``, exactly as
  :mod:`harness.steps_registry` does;
- pytest-bdd: ``pytest_bdd.parsers.string/parse/cfparse/re``;
- behave: the matcher classes of ``behave.matchers`` (``parse``, ``cfparse``, ``re``...).

Custom types are not imported (their modules are step code): each is replaced by a stand-in converter
with the same ``pattern`` (read from ``@parse.with_pattern(...)``) or parse's default ``.+?``.

A step whose keyword differs from the definition's never matches it (``step``/``*`` match all). A step
matched by two or more *different functions* within one runner (registry + pytest-bdd, or registry +
behave) is ambiguous; one function matching through two of its own patterns is not.

Speed: candidates come from an index keyed by the pattern's literal text up to the last space before
its first field, so each step is tried only against patterns whose literal start it has.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import parse

from .cache import FeatureCache
from .model import FeatureStep, Pattern, SourceError, StepFunction

Matcher = Callable[[str], bool]


def _stand_in(regex: str | None) -> Callable[[str], str]:
    def convert(text: str) -> str:
        return text

    if regex is not None:
        convert.pattern = regex  # type: ignore[attr-defined]
        convert.regex_group_count = re.compile(regex).groups  # type: ignore[attr-defined]
    return convert


def _types(spec: dict[str, str | None]) -> dict[str, Callable[[str], str]]:
    return {name: _stand_in(regex) for name, regex in spec.items()}


def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


class MatcherFactory:
    def __init__(self, registry_types: dict[str, str | None], behave_types: dict[str, str | None]) -> None:
        self.types_signature = {f"registry:{k}": v for k, v in registry_types.items()}
        self.types_signature |= {f"behave:{k}": v for k, v in behave_types.items()}
        self.registry_types = _types(registry_types)
        self.behave_types = _types(behave_types)

    def build(self, pattern: Pattern) -> Matcher:
        text = pattern.text or ""
        if pattern.family == "registry":
            compiled = parse.compile(text, extra_types=self.registry_types, case_sensitive=True)
            return lambda step: compiled.parse(step) is not None
        if pattern.family == "pytest_bdd":
            from pytest_bdd import parsers

            kind = {"parse": parsers.parse, "cfparse": parsers.cfparse, "re": parsers.re}.get(pattern.parser)
            if kind is None:
                return lambda step: step == text
            options = {"extra_types": _types(pattern.extra_types)} if pattern.parser != "re" else {}
            step_parser = kind(text, **options)
            return lambda step: bool(step_parser.is_matching(step))
        from behave.matchers import StepMatcherFactory

        classes = StepMatcherFactory.make_step_matcher_class_mapping()
        if pattern.parser not in classes:
            raise ValueError(f"unknown behave step matcher {pattern.parser!r}")
        cls = classes[pattern.parser]
        if pattern.parser in ("parse", "cfparse"):
            matcher = cls(_noop, text, custom_types=self.behave_types)
        else:
            matcher = cls(_noop, text)
        matcher.compile()

        def match(step: str) -> bool:
            try:
                return matcher.check_match(step) is not None
            except ValueError:
                return False

        return match


def _literal_key(pattern: Pattern) -> str:
    text = pattern.text or ""
    if pattern.parser == "re":
        return ""
    if pattern.parser != "string":
        text = text.split("{", 1)[0]
    return text[: text.rfind(" ") + 1].lower()


@dataclass
class Entry:
    func: StepFunction
    pattern: Pattern
    match: Matcher
    key: str = ""  # identifies the matcher's behaviour, for the match cache


@dataclass
class MatchResult:
    step: FeatureStep
    entries: list[Entry]

    @property
    def functions(self) -> list[StepFunction]:
        return list({id(e.func): e.func for e in self.entries}.values())

    @property
    def ambiguous(self) -> bool:
        for runner in ({"registry", "pytest_bdd"}, {"registry", "behave"}):
            funcs = {id(e.func) for e in self.entries if e.pattern.family in runner}
            if len(funcs) > 1:
                return True
        return False


@dataclass
class StepIndex:
    by_key: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    errors: list[SourceError] = field(default_factory=list)
    cache: FeatureCache | None = None
    types_key: str = ""
    _cache: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)

    def _matches(self, entry: Entry, text: str) -> bool:
        if self.cache is None:
            return entry.match(text)
        key = self.cache.match_key(self.types_key + entry.key, text)
        found = self.cache.get(key)
        if found is None:
            found = bool(entry.match(text))
            self.cache.put(key, found)
        return bool(found)

    @classmethod
    def build(cls, functions: list[StepFunction], factory: MatcherFactory) -> StepIndex:
        index = cls()
        for func in functions:
            for pattern in func.patterns:
                if pattern.text is None:
                    continue
                try:
                    matcher = factory.build(pattern)
                except Exception as exc:  # a pattern the runner would reject too
                    message = f"bad {pattern.family} pattern {pattern.text!r}: {exc}"
                    index.errors.append(SourceError(func.path, pattern.line, message))
                    func.reasons.append(message)
                    continue
                identity = "\0".join(
                    [
                        pattern.family,
                        pattern.parser,
                        pattern.keyword,
                        pattern.text,
                        repr(sorted(pattern.extra_types.items())),
                    ]
                )
                index.by_key[_literal_key(pattern)].append(Entry(func, pattern, matcher, identity))
        index.types_key = repr(sorted(factory.types_signature.items()))
        return index

    def candidates(self, text: str) -> list[Entry]:
        lowered = text.lower()
        found = list(self.by_key.get("", ()))
        start = lowered.find(" ")
        while start != -1:
            found.extend(self.by_key.get(lowered[: start + 1], ()))
            start = lowered.find(" ", start + 1)
        return found

    def match(self, step: FeatureStep) -> MatchResult:
        key = (step.kind, step.text)
        if key not in self._cache:
            self._cache[key] = [
                e
                for e in self.candidates(step.text)
                if (step.kind == "any" or e.pattern.keyword in ("step", step.kind))
                and self._matches(e, step.text)
            ]
        return MatchResult(step, self._cache[key])
