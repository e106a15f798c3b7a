"""Gherkin → the concrete steps a runner would execute.

Uses ``gherkin-official`` (the parser pytest-bdd 9 ships): its pickle compiler already expands
Background steps into every scenario, substitutes Scenario Outline placeholders per Examples row, walks
Rules, and resolves ``And``/``But`` to the previous keyword's type. A ``*`` step keeps the type
"Unknown" (any keyword's definitions may match it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gherkin.errors import CompositeParserException, ParserException
from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler

from .cache import FeatureCache
from .model import FeatureStep, SourceError

_KIND = {"Context": "given", "Action": "when", "Outcome": "then", "Unknown": "any"}


def feature_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.feature") if p.is_file())


def _step_nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Map every AST step id to its node (for its line and keyword as written)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "keyword" in node and "text" in node and "id" in node and "location" in node:
                found[node["id"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document.get("feature"))
    return found


def _error_line(exc: Exception) -> int:
    location = getattr(exc, "location", None) or {}
    return int(location.get("line") or 0)


def read_feature(path: Path, display: str) -> tuple[list[FeatureStep], list[SourceError]]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [SourceError(display, 0, f"cannot read: {exc}")]
    return parse_feature(source, display)


def parse_feature(source: str, display: str) -> tuple[list[FeatureStep], list[SourceError]]:
    try:
        document = Parser().parse(source)
    except CompositeParserException as exc:
        return [], [SourceError(display, _error_line(e), str(e)) for e in exc.errors]
    except ParserException as exc:
        return [], [SourceError(display, _error_line(exc), str(exc))]
    document["uri"] = display
    nodes = _step_nodes(document)
    steps: list[FeatureStep] = []
    for pickle in Compiler().compile(document):
        for pstep in pickle["steps"]:
            node = nodes.get(pstep["astNodeIds"][0], {})
            argument = pstep.get("argument", {})
            steps.append(
                FeatureStep(
                    path=display,
                    line=int(node.get("location", {}).get("line", 0)),
                    keyword=str(node.get("keyword", "")),
                    kind=_KIND.get(pstep.get("type", "Unknown"), "any"),
                    text=pstep["text"],
                    scenario=pickle["name"],
                    has_table="dataTable" in argument,
                    has_docstring="docString" in argument,
                )
            )
    return steps, []


def read_features(
    paths: Iterable[Path], display: dict[Path, str], cache: FeatureCache | None = None
) -> tuple[list[FeatureStep], list[SourceError]]:
    steps: list[FeatureStep] = []
    errors: list[SourceError] = []
    for path in paths:
        name = display[path]
        try:
            content = path.read_bytes()
            source = content.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(SourceError(name, 0, f"cannot read: {exc}"))
            continue
        key = cache.key(name, content) if cache is not None else ""
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            cached = parse_feature(source, name)
            if cache is not None:
                cache.put(key, cached)
        steps.extend(cached[0])
        errors.extend(cached[1])
    return steps, errors
