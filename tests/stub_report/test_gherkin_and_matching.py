"""The two fast paths are exact: the line reader gives what gherkin-official gives (or hands the file
over), and the match shortcut decides what the runner's own compiled matcher decides."""

from __future__ import annotations

import random
import re
from pathlib import Path

import parse
import pytest

from tools.stubreport import gherkin_reader as g
from tools.stubreport.matching import Spec, decide
from tools.stubreport.regex_split import split

REPO = Path(__file__).resolve().parents[2]
TRICKY = [
    "Feature: f\n  Scenario: s\n    Given a\n    * b\n    But c\n",
    "# language: en\n@t1 @t2\nFeature: f\n  Description line\n\n  Background:\n    Given bg\n\n"
    "  Rule: r\n    Background:\n      Given rule bg\n    Example: e\n      When x\n      Then y\n",
    "Feature: f\n  Scenario Outline: o <a>\n    Given <a> and <b>\n    And a <c> that stays\n\n"
    "    @ex\n    Examples: one\n      | a | b |\n      | 1 | 2 |\n      | 3 | 4 |\n\n    Examples: empty\n"
    "      | a | b |\n",
    'Feature: f\n  Scenario: s\n    Given a doc\n      """json\n      Given not a step\n      """\n'
    "    When a table\n      | x | y |\n      | 1 | 2 |\n",
    "Feature: f\n  Scenario: s\n    Given a\n  this is not Gherkin\n",  # an error: handed over
    "Feature: f\n  Scenario: s\n    Given a\n      | a \\| b |\n",  # an escape: handed over
    "# language: fr\nFonctionnalité: f\n  Scénario: s\n    Soit a\n",  # another language: handed over
    "Feature: f\n  Scenario: no steps\n  Scenario Outline: no examples <x>\n    Given <x>\n",
]


def _sources() -> list[tuple[str, str]]:
    found = [(f"tricky-{i}", text) for i, text in enumerate(TRICKY)]
    for path in sorted(
        [*REPO.joinpath("features").glob("*.feature"), *Path(__file__).parent.rglob("*.feature")]
    ):
        found.append((path.name, path.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize(("name", "source"), _sources(), ids=[n for n, _ in _sources()])
def test_line_reader_equals_gherkin_official_or_hands_over(name: str, source: str) -> None:
    try:
        fast = g.read_fast(source)
    except g._Unsure:
        return  # gherkin-official reads it (and reports its errors)
    official = g.read_official(source)  # the line reader never accepts what gherkin-official refuses
    assert g.expand_pickles(fast, name) == g.expand_pickles(official, name)
    assert g.expand_pytest_bdd(fast, name) == g.expand_pytest_bdd(official, name)


def test_pickle_and_pytest_bdd_step_types_differ_where_the_runners_do() -> None:
    doc = g.read_fast(TRICKY[0])
    assert [s.kind for s in g.expand_pickles(doc, "f")] == ["given", "any", "any"]
    assert [s.kind for s in g.expand_pytest_bdd(doc, "f")[0]] == ["given", "given", "given"]
    outline = g.read_fast(TRICKY[2])
    assert [s.text for s in g.expand_pickles(outline, "f")] == [
        "1 and 2", "a <c> that stays", "3 and 4", "a <c> that stays",
    ]  # fmt: skip
    steps, errors = g.expand_pytest_bdd(g.read_fast("Feature: f\n  Scenario: s\n    And a\n"), "f")
    assert steps == [] and "must start with 'Given', 'When' or 'Then'" in errors[0].message


# -- matching -------------------------------------------------------------------------------------------
WORDS = [
    "I",
    "have",
    "a",
    "the",
    "cukes",
    "in",
    "belly",
    "5",
    "-3",
    "1.5",
    '"x y"',
    "red",
    "{",
    "}",
    "(",
    ")",
]
PATTERNS = [
    "I have {n:d} cukes",
    "I have {n} cukes in {where}",
    "the {color:w} {thing}",
    'a "{name}" in {n:f}',
    "{a} {b}",
    "I have {n:d} cukes in my {where:w}",
]
REGEXES = [
    r"I have (\d+) cukes?",
    r"the (?P<c>red|green) (\w+)",
    r"(?:a|the) (.+) in (\d+)",
    r"I have (?P<n>-?\d+) cukes in (?P<w>[^ ]+)",
    r"the \w+ \d+ (.*)",
    r"a (?=b)b",
]


def _texts(count: int) -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7))) for _ in range(count)]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_shortcut_decides_as_parse_itself(pattern: str) -> None:
    for case_sensitive in (True, False):
        parser = parse.Parser(pattern, case_sensitive=case_sensitive)
        spec = Spec(
            regex=parser._expression,
            flags=parser._re_flags,
            build=lambda p=parser: lambda t: p.parse(t) is not None,
        )
        for text in [*_texts(400), "I have 5 cukes", "I have 5 cukes in my belly", "i HAVE 5 CUKES"]:
            assert decide(spec, text) == (parser.parse(text) is not None), (pattern, text)


@pytest.mark.parametrize("regex", REGEXES)
def test_the_shortcut_decides_as_fullmatch(regex: str) -> None:
    compiled = re.compile(regex)
    spec = Spec(regex=regex, build=lambda: lambda t: compiled.fullmatch(t) is not None)
    for text in [*_texts(400), "I have 5 cukes", "the red 5 x", "a b", "the belly in 5"]:
        assert decide(spec, text) == (compiled.fullmatch(text) is not None), (regex, text)


def test_split_is_certain_only_when_it_may_be() -> None:
    assert split(r"^I have (\d+) cukes$").certain
    assert split(r"I have (\d+) cukes").literals == ["I have ", " cukes"]
    assert not split(r"a|b").certain and split(r"a|b").alternation
    for uncertain in (r"\bword", r"a(?=b)", r"(a)\1", r"a(?i)b", r"*a"):
        assert not split(uncertain).certain, uncertain
