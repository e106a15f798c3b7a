"""Match feature steps to step patterns with each runner's own matcher, fast.

Every pattern becomes a :class:`Spec` built by the runner's own code: the regular expression that
``parse``/``parse_type`` generate for it (through behave's or pytest-bdd's matcher classes), the regex
as written for ``re`` matchers, ``cucumber-expressions``' regex for cucumber expressions, or plain
equality (pytest-bdd's ``string`` parser, Rust literals). Custom types are not imported (their modules
are test code): each becomes a stand-in converter with the same ``pattern`` (read from
``@parse.with_pattern(...)``) or the library's default.

Deciding a match (see :mod:`.regex_split` for why each shortcut is exact):

1. the index only offers a step the patterns whose required literal words it contains;
2. the literal pieces must occur in order (a miss is a certain "no");
3. when the split is certain and every piece fully matches its segment, it is a certain "yes";
4. anything else asks the runner's own compiled matcher (``parser.parse``, ``matcher.check_match``,
   ``fullmatch``), which is built only then.

Compiling thousands of generated regexes costs 0.1-0.5 ms each; most suites now compile none.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .model import Pattern, SourceError, StepFunction
from .regex_split import Split, split

Matcher = Callable[[str], bool]


class BadPattern(ValueError):
    """The runner itself would refuse this pattern (behave: a BAD-STEP-DEFINITION)."""


@dataclass
class Spec:
    """How one pattern matches: ``literal`` equality, or ``regex`` in full with ``flags``."""

    literal: str | None = None
    regex: str | None = None
    flags: int = 0
    casefold: bool = False  # literal equality ignoring case
    build: Callable[[], Matcher] | None = None  # the runner's own matcher, built on demand
    _real: Matcher | None = None
    _split: Split | None = None

    def real(self, text: str) -> bool:
        if self._real is None:
            assert self.build is not None
            try:
                self._real = self.build()
            except re.error:  # a pattern the runner cannot compile matches nothing
                self._real = _never
        return self._real(text)

    @property
    def parts(self) -> Split | None:
        if self._split is None and self.regex is not None:
            try:
                self._split = split(self.regex)
            except ValueError:
                self._split = Split([""], [], certain=False, alternation=True)
            self._split.flags |= self.flags
        return self._split


# -- stand-ins for custom types --------------------------------------------------------------------
def stand_in(regex: str | None) -> Callable[[str], str]:
    def convert(text: str) -> str:
        return text

    if regex is not None:
        convert.pattern = regex  # type: ignore[attr-defined]
        convert.regex_group_count = re.compile(regex).groups  # type: ignore[attr-defined]
    return convert


def stand_ins(spec: dict[str, str | None]) -> dict[str, Callable[[str], str]]:
    return {name: stand_in(regex) for name, regex in spec.items()}


def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


def _never(_text: str) -> bool:
    return False


# -- spec builders: one per runner and parser -------------------------------------------------------
def _parse_spec(parser: Any, check: Callable[[str], Any]) -> Spec:
    return Spec(
        regex=parser._expression, flags=parser._re_flags, build=lambda: lambda t: check(t) is not None
    )


def registry_spec(pattern: Pattern, types: dict[str, Callable[[str], str]]) -> Spec:
    import parse

    parser = parse.Parser(pattern.text or "", extra_types=types, case_sensitive=True)
    return _parse_spec(parser, parser.parse)


def pytest_bdd_spec(pattern: Pattern, types: dict[str, Callable[[str], str]]) -> Spec:
    text = pattern.text or ""
    if pattern.parser == "string":
        return Spec(literal=text)
    extra = {**types, **stand_ins(pattern.extra_types)}
    if pattern.parser == "re":

        def build_re() -> Matcher:
            from pytest_bdd import parsers

            return parsers.re(text).is_matching

        return Spec(regex=text, build=build_re)
    if pattern.parser == "parse":
        import parse

        parser = parse.Parser(text, extra_types=extra)  # pytest_bdd.parsers.parse: parse.compile defaults
    else:
        from parse_type import cfparse

        parser = cfparse.Parser(text, extra_types=extra)

    def build() -> Matcher:
        from pytest_bdd import parsers

        kind = parsers.parse if pattern.parser == "parse" else parsers.cfparse
        return kind(text, extra_types=extra).is_matching

    return Spec(regex=parser._expression, flags=parser._re_flags, build=build)


def behave_spec(pattern: Pattern, types: dict[str, Callable[[str], str]], cucumber: Any = None) -> Spec:
    text = pattern.text or ""
    if pattern.parser == "cucumber":
        from behave.cucumber_expression import StepMatcher4CucumberExpressions

        try:
            matcher = StepMatcher4CucumberExpressions(_noop, text, parameter_types=cucumber)
        except Exception as exc:
            raise BadPattern(str(exc)) from exc
        return Spec(regex=matcher.regex_pattern, build=lambda: lambda t: matcher.check_match(t) is not None)
    from behave.matchers import StepMatcherFactory

    classes = StepMatcherFactory.make_step_matcher_class_mapping()
    if pattern.parser not in classes:
        raise BadPattern(f"unknown behave step matcher {pattern.parser!r}")
    cls = classes[pattern.parser]
    try:
        if pattern.parser in ("parse", "cfparse"):
            matcher = cls(_noop, text, custom_types=types)
        else:
            matcher = cls(_noop, text)
    except Exception as exc:  # behave reports these as BAD-STEP-DEFINITION and skips them
        raise BadPattern(str(exc)) from exc

    def build() -> Matcher:
        matcher.compile()

        def match(step: str) -> bool:
            try:
                return matcher.check_match(step) is not None
            except ValueError:
                return False

        return match

    if pattern.parser in ("parse", "cfparse"):
        parser = matcher.parser
        return Spec(regex=parser._expression, flags=parser._re_flags, build=build)
    source = matcher.pattern
    if pattern.parser == "re0" and not (source.startswith("^") and source.endswith("$")):
        return Spec(build=build)  # prefix semantics (re.match without "$"): only the real matcher
    return Spec(regex=source, flags=re.UNICODE, build=build)


# -- deciding ----------------------------------------------------------------------------------------
_SEGMENTS: dict[tuple[str, int], re.Pattern[str] | None] = {}


def _segment(source: str, flags: int) -> re.Pattern[str] | None:
    key = (source, flags)
    if key not in _SEGMENTS:
        try:
            _SEGMENTS[key] = re.compile(source, flags)
        except re.error:
            _SEGMENTS[key] = None
    return _SEGMENTS[key]


_GROUP_NAME = re.compile(r"\(\?P<(\w+)>")


def _shortcut_ok(parts: Split) -> bool:
    """The certain split is also a valid regex: every segment compiles, no group name twice."""
    if parts.valid is None:
        names = [n for seg in parts.segments for n in _GROUP_NAME.findall(seg)]
        parts.valid = len(names) == len(set(names)) and all(
            _segment(seg, parts.flags) is not None for seg in parts.segments
        )
    return parts.valid


def decide(spec: Spec, text: str) -> bool:
    if spec.literal is not None:
        return text.lower() == spec.literal.lower() if spec.casefold else text == spec.literal
    parts = spec.parts
    if parts is None or parts.alternation:
        return spec.real(text)
    fold = bool(parts.flags & re.IGNORECASE)
    literals = parts.literals
    if fold:
        if not (text.isascii() and all(lit.isascii() for lit in literals)):
            return spec.real(text)
        haystack, literals = text.lower(), [lit.lower() for lit in literals]
    else:
        haystack = text
    first, last = literals[0], literals[-1]
    if not haystack.startswith(first):
        return False
    if not parts.segments:
        return haystack == first if parts.certain else spec.real(text)
    pieces: list[str] = []
    pos = len(first)
    for literal in literals[1:-1]:
        found = haystack.find(literal, pos)
        if found < 0:
            return False
        pieces.append(text[pos:found])
        pos = found + len(literal)
    tail = len(haystack) - len(last)
    if tail < pos or not haystack.endswith(last):
        return False
    pieces.append(text[pos:tail])
    if parts.certain and _shortcut_ok(parts):
        compiled = [_segment(seg, parts.flags) for seg in parts.segments]
        if all(c is not None and c.fullmatch(p) for c, p in zip(compiled, pieces, strict=True)):
            return True
    return spec.real(text)


# -- the index ---------------------------------------------------------------------------------------
def _bounded_words(literals: list[str], anchored: bool) -> list[str]:
    """Whole words of the literal pieces: space (or an anchored end) on both sides."""
    words: list[str] = []
    last = len(literals) - 1
    for i, literal in enumerate(literals):
        tokens = literal.lower().split(" ")
        first, final = (0 if i == 0 and anchored else 1), len(tokens) - (1 if i == last and anchored else 2)
        words.extend(t for t in tokens[first : final + 1] if t and len(t.split()) == 1)
    return words


def _order(entry: Entry) -> int:
    return entry.pattern.order


@dataclass
class Entry:
    func: StepFunction
    pattern: Pattern
    spec: Spec
    words: list[str] = field(default_factory=list)


@dataclass
class StepIndex:
    entries: list[Entry] = field(default_factory=list)
    by_word: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    always: list[Entry] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    _memo: dict[tuple[str, str, str], list[Entry]] = field(default_factory=dict)

    @classmethod
    def build(cls, functions: list[StepFunction], make_spec: Callable[[Pattern], Spec]) -> StepIndex:
        index = cls()
        for func in functions:
            for pattern in func.patterns:
                if pattern.text is None:
                    continue
                try:
                    spec = make_spec(pattern)
                except Exception as exc:  # a pattern the runner would refuse too
                    message = f"bad {pattern.family} pattern {pattern.text!r}: {exc}"
                    index.errors.append(SourceError(pattern.path or func.path, pattern.line, message))
                    func.reasons.append(message)
                    continue
                index.entries.append(Entry(func, pattern, spec))
        frequency: dict[str, int] = defaultdict(int)
        for entry in index.entries:
            if entry.spec.literal is not None:
                entry.words = [w.lower() for w in entry.spec.literal.split(" ") if w]
            elif (parts := entry.spec.parts) is not None and not parts.alternation:
                entry.words = _bounded_words(parts.literals, anchored=True)
            for word in set(entry.words):
                frequency[word] += 1
        for entry in index.entries:
            if entry.words:
                index.by_word[min(entry.words, key=lambda w: (frequency[w], w))].append(entry)
            else:
                index.always.append(entry)
        return index

    def matches(
        self, kind: str, text: str, accepts: Callable[[str, Pattern], bool], tag: str = ""
    ) -> list[Entry]:
        """Every entry whose pattern matches ``text`` and whose keyword ``accepts`` the step's kind,
        in registration order (memoised per ``tag``: one tag per ``accepts``)."""
        key = (tag, kind, text)
        found = self._memo.get(key)
        if found is None:
            candidates = list(self.always)
            by_word = self.by_word
            for word in set(text.lower().split()):
                hit = by_word.get(word)
                if hit:
                    candidates.extend(hit)
            found = [e for e in candidates if accepts(kind, e.pattern) and decide(e.spec, text)]
            if len(found) > 1:
                found.sort(key=_order)
            self._memo[key] = found
        return found
