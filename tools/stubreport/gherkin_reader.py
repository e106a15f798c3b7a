"""Feature files → the concrete steps a runner executes, with that runner's Gherkin rules.

Two step-type rules on the same grammar (gherkin-official's):

- ``pickles`` (our registry; what gherkin-official's pickle compiler does): Background steps run before
  every scenario that has steps, each Examples row is its own scenario, ``And``/``But`` take the previous
  step's type and a ``*`` step is of type "any";
- ``pytest-bdd`` (what ``pytest_bdd.parser`` does): types are set per block (Background, Scenario), ``*``
  takes the previous type too, the first step of a block must be Given/When/Then (else the feature does
  not load), Background steps always run, an outline without Examples rows runs once, unrendered.

behave has its own, more lenient parser (lower-case keywords, ``'''`` doc strings): behave suites are
read with ``behave.parser`` itself (:mod:`.runners.behave`).

Speed: gherkin-official's parser costs ~15 µs a line, too slow for 30,000-step suites. A line reader
handles the common English subset here; any line it cannot place with certainty (another language,
a line gherkin-official would reject, escapes in a table) sends that file to gherkin-official, which
also gives the exact error message. Both paths produce the same :class:`Document`.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .model import FeatureStep, SourceError

KIND = {"Context": "given", "Action": "when", "Outcome": "then"}


@dataclass
class GStep:
    line: int
    keyword: str  # as written, trailing space included
    ktype: str  # gherkin keyword type: Context | Action | Outcome | Conjunction | Unknown
    text: str
    has_table: bool = False
    has_docstring: bool = False


@dataclass
class GExamples:
    line: int
    header: list[str] | None = None
    rows: list[list[str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class GScenario:
    line: int
    name: str
    steps: list[GStep] = field(default_factory=list)
    examples: list[GExamples] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class GRule:
    line: int
    background: list[GStep] | None = None
    scenarios: list[GScenario] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Document:
    background: list[GStep] | None = None
    children: list[GScenario | GRule] = field(default_factory=list)
    has_feature: bool = False
    tags: list[str] = field(default_factory=list)


class _Unsure(Exception):
    """The line reader cannot place a line with certainty: let gherkin-official read the file."""


@cache
def _english() -> dict[str, Any]:
    """gherkin-official's own English keywords (found, not imported: its parser loads only when needed)."""
    spec = importlib.util.find_spec("gherkin")
    assert spec is not None and spec.origin is not None, "gherkin-official is not installed"
    path = Path(spec.origin).parent / "gherkin-languages.json"
    return json.loads(path.read_text(encoding="utf-8"))["en"]


@cache
def _step_words() -> dict[str, tuple[str, str]] | None:
    """First word + space -> (keyword, type), when every English step keyword is one word."""
    words = {kw: (kw, kt) for kw, kt in _step_keywords()}
    return words if all(kw.endswith(" ") and " " not in kw[:-1] for kw in words) else None


@cache
def _step_keywords() -> list[tuple[str, str]]:
    """(keyword, type) longest first, as gherkin-official's token matcher tries them."""
    en = _english()
    types: dict[str, list[str]] = {}
    for group, ktype in (("given", "Context"), ("when", "Action"), ("then", "Outcome")):
        for kw in en[group]:
            types.setdefault(kw, []).append(ktype)
    for group in ("and", "but"):
        for kw in en[group]:
            types.setdefault(kw, []).append("Conjunction")
    return sorted(
        ((kw, kts[0] if len(kts) == 1 else "Unknown") for kw, kts in types.items()),
        key=lambda item: -len(item[0]),
    )


def _header(stripped: str) -> tuple[str, str] | None:
    """``("scenario", name)`` when the line is a keyword line (``Scenario: name``)."""
    if ":" not in stripped:
        return None
    head, _, rest = stripped.partition(":")
    for kind, names in _headers().items():
        if head in names:
            return kind, rest.strip()
    return None


@cache
def _headers() -> dict[str, frozenset[str]]:
    en = _english()
    return {
        "feature": frozenset(en["feature"]),
        "background": frozenset(en["background"]),
        "scenario": frozenset(en["scenario"] + en["scenarioOutline"]),
        "examples": frozenset(en["examples"]),
        "rule": frozenset(en["rule"]),
    }


_LANGUAGE = re.compile(r"^\s*#\s*language\s*:\s*([a-zA-Z0-9_-]+)\s*$")


def _cells(stripped: str) -> list[str]:
    if "\\" in stripped or not stripped.endswith("|") or len(stripped) < 2:
        raise _Unsure  # escapes and ragged rows: gherkin-official's own rules
    return [c.strip() for c in stripped[1:-1].split("|")]


def _tags(stripped: str) -> list[str]:
    words = re.split(r"\s#", stripped, maxsplit=1)[0].split()
    if not all(w.startswith("@") and len(w) > 1 for w in words):
        raise _Unsure
    return [w[1:] for w in words]


def read_fast(source: str) -> Document:
    """The line reader; raises :class:`_Unsure` for anything outside its certain subset."""
    doc = Document()
    scenario: GScenario | None = None
    rule: GRule | None = None
    block: list[GStep] | None = None  # the steps list being filled (background or scenario)
    examples: GExamples | None = None
    state = "start"  # start | header | description | after_comment | steps | table | examples_table
    docstring: str | None = None
    tags_pending = False
    tags: list[str] = []
    keywords = _step_keywords()
    words = _step_words()
    for number, raw in enumerate(source.splitlines(), start=1):
        stripped = raw.strip()
        if docstring is not None:
            if stripped.startswith(docstring):
                docstring = None
            continue
        if not stripped:
            continue
        if stripped.startswith("#"):
            lang = _LANGUAGE.match(raw)
            if lang and lang.group(1) != "en":
                raise _Unsure
            if state == "description":
                state = "after_comment"
            continue
        if stripped.startswith("@"):
            tags.extend(_tags(stripped))
            tags_pending = True
            continue
        if words is not None:
            step = words.get(stripped[: stripped.find(" ") + 1]) if " " in stripped else None
        else:
            step = next(((kw, kt) for kw, kt in keywords if stripped.startswith(kw)), None)
        if step is not None:
            if (
                tags_pending
                or block is None
                or state in ("examples", "examples_table")
                or not doc.has_feature
            ):
                raise _Unsure
            keyword, ktype = step
            block.append(GStep(number, keyword, ktype, stripped[len(keyword) :].strip()))
            state = "steps"
            continue
        head = _header(stripped)
        if head is not None:
            kind, name = head
            if tags_pending and kind == "background":
                raise _Unsure
            tags_pending = False
            taken, tags = tags, []
            if kind == "feature":
                if doc.has_feature:
                    raise _Unsure
                doc.has_feature = True
                doc.tags = taken
            elif not doc.has_feature:
                raise _Unsure
            elif kind == "background":
                owner: Document | GRule = rule if rule is not None else doc
                has_children = bool(rule.scenarios) if rule is not None else bool(doc.children)
                if owner.background is not None or has_children:
                    raise _Unsure
                owner.background = block = []
                scenario = None
            elif kind == "rule":
                rule = GRule(number, tags=taken)
                doc.children.append(rule)
                scenario, block = None, None
            elif kind == "scenario":
                scenario = GScenario(number, name, tags=taken)
                (rule.scenarios if rule is not None else doc.children).append(scenario)
                block = scenario.steps
            elif kind == "examples":
                if scenario is None:
                    raise _Unsure
                examples = GExamples(number, tags=taken)
                scenario.examples.append(examples)
                block = None
                state = "examples"
                continue
            state = "header"
            continue
        if tags_pending:
            raise _Unsure
        if stripped.startswith("|"):
            cells = _cells(stripped)
            if state in ("steps", "table") and block:
                if state == "steps":
                    if block[-1].has_docstring:
                        raise _Unsure
                    block[-1].has_table = True
                    width = len(cells)
                elif len(cells) != width:
                    raise _Unsure
                state = "table"
            elif state in ("examples", "examples_table") and examples is not None:
                if examples.header is None:
                    examples.header = cells
                elif len(cells) != len(examples.header):
                    raise _Unsure
                else:
                    examples.rows.append(cells)
                state = "examples_table"
            else:
                raise _Unsure
            continue
        if stripped.startswith(('"""', "```")):
            if state != "steps" or not block or block[-1].has_docstring or block[-1].has_table:
                raise _Unsure
            block[-1].has_docstring = True
            docstring = stripped[:3]
            continue
        # free text: a description right after a keyword line, anything else is an error
        if state in ("header", "description") or (state == "examples" and examples and not examples.header):
            state = "description" if state != "examples" else "examples"
            continue
        if state == "start" and not doc.has_feature:
            raise _Unsure
        raise _Unsure
    if docstring is not None or tags_pending:
        raise _Unsure
    return doc


# -- gherkin-official (fallback and reference) --------------------------------------------------------
def _steps_from_ast(steps: list[dict[str, Any]]) -> list[GStep]:
    return [
        GStep(
            line=int(s["location"]["line"]),
            keyword=str(s["keyword"]),
            ktype=str(s.get("keywordType", "Unknown")),
            text=str(s["text"]),
            has_table="dataTable" in s,
            has_docstring="docString" in s,
        )
        for s in steps
    ]


def _tag_names(node: dict[str, Any]) -> list[str]:
    return [str(t["name"]).lstrip("@") for t in node.get("tags", [])]


def _scenario_from_ast(node: dict[str, Any]) -> GScenario:
    scenario = GScenario(int(node["location"]["line"]), str(node["name"]), _steps_from_ast(node["steps"]))
    scenario.tags = _tag_names(node)
    for ex in node.get("examples", []):
        item = GExamples(int(ex["location"]["line"]), tags=_tag_names(ex))
        if "tableHeader" in ex:
            item.header = [c["value"] for c in ex["tableHeader"]["cells"]]
            item.rows = [[c["value"] for c in row["cells"]] for row in ex.get("tableBody", [])]
        scenario.examples.append(item)
    return scenario


def read_official(source: str) -> Document:
    """gherkin-official's parser; raises its exceptions."""
    from gherkin.parser import Parser

    ast = Parser().parse(source)
    doc = Document()
    feature = ast.get("feature")
    if not feature:
        return doc
    doc.has_feature = True
    doc.tags = _tag_names(feature)
    for child in feature.get("children", []):
        if "background" in child:
            doc.background = _steps_from_ast(child["background"]["steps"])
        elif "scenario" in child:
            doc.children.append(_scenario_from_ast(child["scenario"]))
        elif "rule" in child:
            rule = GRule(int(child["rule"]["location"]["line"]), tags=_tag_names(child["rule"]))
            for inner in child["rule"].get("children", []):
                if "background" in inner:
                    rule.background = _steps_from_ast(inner["background"]["steps"])
                elif "scenario" in inner:
                    rule.scenarios.append(_scenario_from_ast(inner["scenario"]))
            doc.children.append(rule)
    return doc


def parse_document(source: str, display: str) -> tuple[Document | None, list[SourceError]]:
    try:
        return read_fast(source), []
    except _Unsure:
        pass
    from gherkin.errors import CompositeParserException, ParserException

    try:
        return read_official(source), []
    except CompositeParserException as exc:
        return None, [SourceError(display, _error_line(e), str(e)) for e in exc.errors]
    except ParserException as exc:
        return None, [SourceError(display, _error_line(exc), str(exc))]


def _error_line(exc: Exception) -> int:
    location = getattr(exc, "location", None) or {}
    return int(location.get("line") or 0)


# -- expansion: the steps each runner executes --------------------------------------------------------
def _scenarios(doc: Document) -> list[tuple[GScenario, list[GStep]]]:
    """Each scenario with the Background steps that run before it (feature's, then its rule's)."""
    return [(s, b) for s, b, _ in _scenarios_tagged(doc)]


def _scenarios_tagged(doc: Document) -> list[tuple[GScenario, list[GStep], set[str]]]:
    """As :func:`_scenarios`, with the tags each scenario inherits (feature, rule, its own)."""
    out: list[tuple[GScenario, list[GStep], set[str]]] = []
    for child in doc.children:
        if isinstance(child, GRule):
            background = (doc.background or []) + (child.background or [])
            out.extend((s, background, {*doc.tags, *child.tags, *s.tags}) for s in child.scenarios)
        else:
            out.append((child, doc.background or [], {*doc.tags, *child.tags}))
    return out


def _background_ids(doc: Document) -> set[int]:
    blocks = [doc.background or []] + [c.background or [] for c in doc.children if isinstance(c, GRule)]
    return {id(s) for block in blocks for s in block}


def _interpolate_pickles(text: str, header: list[str], row: list[str]) -> str:
    for name, value in zip(header, row, strict=False):
        text = text.replace(f"<{name}>", value)
    return text


_PARAM = re.compile(r"<(.+?)>")


def _interpolate_pytest_bdd(text: str, context: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: context.get(m.group(1), m.group(0)), text)


def _step(
    display: str, s: GStep, kind: str, text: str, scenario: str, background: bool, binding: str = ""
) -> FeatureStep:
    # positional: the named tuple's fastest constructor (tens of thousands of steps)
    return FeatureStep(
        display, s.line, s.keyword, kind, text, scenario, s.has_table, s.has_docstring, background, binding
    )


def expand_pickles(doc: Document, display: str) -> list[FeatureStep]:
    steps: list[FeatureStep] = []
    shared = _background_ids(doc)
    for scenario, background in _scenarios(doc):
        rows: list[tuple[list[str], list[str]] | None]
        if scenario.examples:
            rows = [(ex.header, row) for ex in scenario.examples if ex.header is not None for row in ex.rows]
        else:
            rows = [None]
        for row in rows:
            if not scenario.steps:
                continue
            last = "Unknown" if row is None else None
            for s in background + scenario.steps:
                last = last if s.ktype == "Conjunction" else s.ktype
                own = id(s) not in shared
                text = s.text if row is None or not own else _interpolate_pickles(s.text, *row)
                steps.append(_step(display, s, KIND.get(last or "", "any"), text, scenario.name, not own))
    return steps


def _pytest_bdd_types(block: list[GStep], display: str) -> tuple[list[str], SourceError | None]:
    if not block:
        return [], None
    first = block[0]
    if first.ktype not in KIND:
        message = (
            "First step in a scenario or background must start with 'Given', 'When' or 'Then', "
            f"but got {first.keyword}."
        )
        return [], SourceError(display, first.line, message)
    kinds, current = [], KIND[first.ktype]
    for s in block:
        current = KIND.get(s.ktype, current)
        kinds.append(current)
    return kinds, None


SKIP_TAG = "skip"  # pytest-bdd turns tags into marks: ``@skip`` is pytest's skip mark


def expand_pytest_bdd(
    doc: Document, display: str, skipped: list[str] | None = None, binding: str = ""
) -> tuple[list[FeatureStep], list[SourceError]]:
    """What ``pytest_bdd.parser`` + scenario rendering give (errors stop the whole feature, as there).

    Scenarios (or Examples) tagged ``@skip`` never run: left out, and named in ``skipped``."""
    steps: list[FeatureStep] = []
    blocks: list[list[GStep]] = [doc.background or []]
    blocks += [c.background or [] for c in doc.children if isinstance(c, GRule)]
    blocks += [s.steps for s, _ in _scenarios(doc)]
    kinds: dict[int, str] = {}
    for block in blocks:
        block_kinds, error = _pytest_bdd_types(block, display)
        if error is not None:
            return [], [error]
        kinds.update({id(s): k for s, k in zip(block, block_kinds, strict=True)})
    by_name: dict[str, tuple[GScenario, list[GStep], set[str]]] = {}
    for scenario, background, tags in _scenarios_tagged(doc):
        by_name[scenario.name] = (scenario, background, tags)  # a later scenario of that name replaces it
    shared = _background_ids(doc)
    for scenario, background, tags in by_name.values():
        if SKIP_TAG in tags:
            if skipped is not None:
                skipped.append(f"{display}:{scenario.line}")
            continue
        rows = [(ex, row) for ex in scenario.examples if ex.header is not None for row in ex.rows]
        contexts = [dict(zip(ex.header, row, strict=True)) for ex, row in rows if SKIP_TAG not in ex.tags]
        if not contexts and not rows:
            contexts = [{}]
        for context in contexts:
            for s in background + scenario.steps:
                text = _interpolate_pytest_bdd(s.text, context) if context else s.text
                steps.append(_step(display, s, kinds[id(s)], text, scenario.name, id(s) in shared, binding))
    return steps, []


def feature_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.feature") if p.is_file())


def read_source(path: Path, display: str) -> tuple[str | None, list[SourceError]]:
    try:
        return path.read_text(encoding="utf-8"), []
    except (OSError, UnicodeDecodeError) as exc:
        return None, [SourceError(display, 0, f"cannot read: {exc}")]
