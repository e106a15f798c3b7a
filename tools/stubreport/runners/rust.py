"""Rust ``cucumber`` suites (the ``cucumber`` crate), as ``cucumber-rs`` matches them.

A crate whose ``Cargo.toml`` depends on ``cucumber`` is a suite: its ``.rs`` files hold the step
functions (``#[given]``/``#[when]``/``#[then]``), its ``.feature`` files the scenarios (read with
gherkin's rules). A root that is not such a crate is searched for them (a workspace: each crate's
steps only match its own features). Matching follows ``cucumber-rs``: a literal is an exact match
(``^escape(text)$``), ``expr`` a cucumber expression (the ``cucumber-expressions`` package, custom
``#[derive(Parameter)]`` types included), ``regex`` a regex found anywhere in the step unless anchored;
a step matching two definitions of its type is ambiguous (cucumber-rs fails it).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .. import gherkin_reader
from ..config import SuiteConfig
from ..matching import Spec, StepIndex
from ..model import FeatureStep, Pattern, SourceError
from ..rules import Rules
from ..rustclassify import RustFacts, classify_all
from ..rustscan import RustModule, RustScan, collect, scan, world_type
from ..snippets import rust_snippet
from .base import Resolution, Suite, display, walk


def _cargo(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _dependencies(cargo: dict[str, Any]) -> dict[str, Any]:
    deps: dict[str, Any] = {}
    for key in ("dependencies", "dev-dependencies"):
        deps.update(cargo.get(key, {}) or {})
    for target in (cargo.get("target", {}) or {}).values():
        if isinstance(target, dict):
            for key in ("dependencies", "dev-dependencies"):
                deps.update(target.get(key, {}) or {})
    return deps


def crates(root: Path) -> list[Path]:
    own = root / "Cargo.toml"
    if own.is_file() and "cucumber" in _dependencies(_cargo(own)):
        return [root]
    return [p.parent for p in walk(root, "Cargo.toml") if "cucumber" in _dependencies(_cargo(p))]


def detect(root: Path) -> bool:
    return bool(crates(root))


def _regex(text: str) -> tuple[str, bool]:
    """A Rust regex as a Python one, and whether cucumber-rs's search equals a full match."""
    source = re.sub(r"\(\?<(?![=!])(\w+)>", r"(?P<\1>", text)
    anchored = source.startswith("^") and source.endswith("$") and not source.endswith("\\$")
    if anchored:
        return source, True
    core = source[1:] if source.startswith("^") else source
    prefix = "" if source.startswith("^") else "(?s:.*?)"
    suffix = "" if source.endswith("$") else "(?s:.*)"
    core = core[:-1] if source.endswith("$") else core
    return f"{prefix}(?:{core}){suffix}", False


def make_spec(pattern: Pattern, registry: Any) -> Spec:
    text = pattern.text or ""
    if pattern.parser == "literal":
        return Spec(literal=text)
    if pattern.parser == "regex":
        source, _ = _regex(text)
        compiled = re.compile(source)
        return Spec(regex=source, build=lambda: lambda t: compiled.fullmatch(t) is not None)
    from cucumber_expressions.expression import CucumberExpression

    expression = CucumberExpression(text, registry)
    return Spec(regex=expression.regexp, build=lambda: lambda t: expression.match(t) is not None)


def _registry(parameters: dict[str, str]) -> Any:
    from cucumber_expressions.parameter_type import ParameterType
    from cucumber_expressions.parameter_type_registry import ParameterTypeRegistry

    registry = ParameterTypeRegistry()
    for name, regexp in parameters.items():
        try:
            registry.define_parameter_type(ParameterType(name, regexp, str, lambda *a: a[0] if a else None))
        except Exception:
            continue
    return registry


def load(config: SuiteConfig, rules: Rules) -> Suite:
    root = config.root
    found = crates(root)
    if not found:
        raise LookupError(f"no Cargo.toml depending on cucumber under {root}")
    errors: list[SourceError] = []
    modules: list[RustModule] = []
    out = RustScan()
    order: list[int] = []
    facts = RustFacts(rules=rules)
    steps: list[FeatureStep] = []
    feature_paths: list[str] = []
    for crate in found:
        name = display(crate, root) or "."
        cargo = _cargo(crate / "Cargo.toml")
        for dep, spec in _dependencies(cargo).items():
            product = isinstance(spec, dict) and ("path" in spec)
            facts.dependencies[dep.replace("-", "_")] = "product" if product else "library"
        for path in walk(crate, ".rs"):
            if "target" in path.relative_to(crate).parts:
                continue
            module = scan(path, display(path, root), name, errors)
            if module is None:
                continue
            modules.append(module)
            collect(module, out, order)
            facts.local_modules.add(path.stem)
            for fn_name, nodes in module.functions.items():
                facts.functions.setdefault(fn_name, []).extend((n, module) for n in nodes)

        for path in walk(crate, ".feature"):
            if "target" in path.relative_to(crate).parts:
                continue
            shown = display(path, root)
            feature_paths.append(shown)
            source, problems = gherkin_reader.read_source(path, shown)
            errors.extend(problems)
            if source is None:
                continue
            doc, problems = gherkin_reader.parse_document(source, shown)
            errors.extend(problems)
            if doc is not None:
                steps.extend(s._replace(binding=name) for s in gherkin_reader.expand_pickles(doc, shown))
    facts.local_types = set(out.types)
    for module in modules:
        for type_name, methods in module.impls.items():
            for fn_name, node in methods.items():
                facts.impls.setdefault(type_name, {}).setdefault(fn_name, (node, module))
    worlds = {t for f in out.functions if (t := world_type(f.node, f.module))}
    for module in modules:
        for type_name, methods in module.impls.items():
            if type_name not in worlds:
                continue
            for fn_name, node in methods.items():
                if fn_name in ("new", "default"):
                    facts.world_inits.append((node, module))
                else:
                    facts.world_methods.setdefault(fn_name, (node, module))
    registry = _registry(out.parameters)
    index = StepIndex.build(out.functions, lambda p: make_spec(p, registry))
    errors.extend(index.errors)
    for func in out.functions:
        if any(p.text is None for p in func.patterns):
            func.reasons.append("a step attribute without a pattern")

    def accepts(kind: str, pattern: Pattern) -> bool:
        return kind == "any" or pattern.keyword == kind

    def resolve(step: FeatureStep) -> Resolution:
        matches = [
            e
            for e in index.matches(step.kind, step.text, accepts, "rs")
            if e.pattern.namespace == step.binding
        ]
        funcs = list({id(e.func): e.func for e in matches}.values())
        return Resolution(runs=funcs, matches=matches, ambiguous=len(matches) > 1, chosen=matches)

    classification = classify_all(out.functions, facts, modules)
    return Suite(
        runner="rust-cucumber",
        root=root,
        feature_paths=feature_paths,
        step_paths=sorted({f.path for f in out.functions}),
        steps=steps,
        functions=out.functions,
        index=index,
        resolve=resolve,
        errors=errors,
        snippet=rust_snippet,
        classification=classification,
        notes=[f"{len(found)} crate(s) with cucumber: " + ", ".join(display(c, root) or "." for c in found)],
        counts_as_runner={"step functions": len(out.functions)},
    )
