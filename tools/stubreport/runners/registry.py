"""Our own registry: ``@given/@when/@then`` from ``harness.steps_registry`` (or a ``StepRegistry`` object
of that module), ``parse`` patterns with the registry's custom types, run by pytest-bdd and behave alike.

The step modules are every ``.py`` under the steps directories; features are read with
gherkin-official's rules. Two different functions matching one step is ambiguous (the registry hands
both runners every definition). What the harness owns on the World is read from the World class named
by ``[tool.stub_report] world`` or, by default, the class the step functions annotate their first
parameter with (``world: World``), resolved inside the suite.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .. import gherkin_reader, pyscan, pyscan_model, pysource
from ..config import SuiteConfig
from ..facts import SuiteFacts
from ..harness_facts import HarnessFacts, read_harness
from ..matching import StepIndex, registry_spec, stand_ins
from ..model import FeatureStep, Pattern, SourceError, StepFunction
from ..rules import Rules
from ..snippets import registry_snippet
from .base import Resolution, Suite, display, skipped, walk
from .pymods import by_names, module_file, product_module


def scan_rules(registry: str) -> pyscan_model.ScanRules:
    return pyscan_model.ScanRules(
        family="registry",
        registrations={f"{registry}.{kw}": kw for kw in ("given", "when", "then", "step")},
        default_parser="parse",
        registry_modules=(registry,),
        type_decorators=frozenset({f"{registry}.parse_type"}),
        custom_types_dicts=frozenset({f"{registry}.CUSTOM_TYPES"}),
    )


def _world_module(functions: list[StepFunction], world: str | None) -> tuple[str, str] | None:
    """(module, class) of the World: configured, or what the step functions annotate ``world`` with."""
    if world:
        module, _, cls = world.partition(":")
        return module, cls or "World"
    votes: dict[tuple[str, str], int] = {}
    for func in functions:
        node = func.node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.args.args:
            continue
        annotation = node.args.args[0].annotation
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            name = annotation.value
        elif isinstance(annotation, ast.Name):
            name = annotation.id
        else:
            continue
        qual = func.module.imports.get(name)
        if qual and "." in qual:
            owner, _, cls = qual.rpartition(".")
            votes[(owner, cls)] = votes.get((owner, cls), 0) + 1
    return max(votes, key=lambda k: votes[k]) if votes else None


def harness_facts(
    config: SuiteConfig, functions: list[StepFunction]
) -> tuple[HarnessFacts | None, str | None]:
    root = config.root
    world = _world_module(functions, config.world)
    dirs = list(config.harness)
    package: str | None = None
    if world is not None:
        package = world[0].split(".")[0]
        if not dirs and module_file(world[0], [root]) is not None:
            dirs = [root / package]
    if not dirs:
        package = config.registry.split(".")[0]
        if (root / package).is_dir():
            dirs = [root / package]
    if not dirs:
        return None, package
    facts = HarnessFacts()
    for directory in dirs:
        found = read_harness(directory, world[1] if world else "World")
        facts.declared |= found.declared
        facts.plain |= found.plain
        facts.found_world |= found.found_world
        if found.found_world:
            facts.inert_methods = found.inert_methods
    return facts, package


def load(config: SuiteConfig, rules: Rules) -> Suite:
    root = config.root
    feature_roots = config.features or [root / "features"]
    step_roots = config.steps or [root / "steps"]
    discovery = pyscan_model.Discovery()
    state = pyscan.ScanState(scan_rules(config.registry), discovery)
    state.lookup = lambda name: next((m for m in discovery.modules if m.module_name == name), None)
    for path in (p for r in step_roots if r.exists() for p in walk(r, ".py")):
        if skipped(path, root):
            continue
        loaded = pysource.load_module(path, display(path, root), root)
        if isinstance(loaded, SourceError):
            discovery.errors.append(loaded)
            continue
        discovery.modules.append(loaded)
        pyscan.evaluate(loaded, state)
    pyscan.unresolved_patterns(discovery.functions)

    feature_paths = [p for r in feature_roots if r.exists() for p in gherkin_reader.feature_files(r)]
    steps: list[FeatureStep] = []
    errors = list(discovery.errors)
    shown = [display(p, root) for p in feature_paths]
    for path, name in zip(feature_paths, shown, strict=True):
        source, problems = gherkin_reader.read_source(path, name)
        errors.extend(problems)
        if source is None:
            continue
        doc, problems = gherkin_reader.parse_document(source, name)
        errors.extend(problems)
        if doc is not None:
            steps.extend(gherkin_reader.expand_pickles(doc, name))

    types = stand_ins(discovery.types)
    index = StepIndex.build(discovery.functions, lambda p: registry_spec(p, types))
    errors.extend(index.errors)

    def accepts(kind: str, pattern: Pattern) -> bool:
        return kind == "any" or pattern.keyword in ("step", kind)

    def resolve(step: FeatureStep) -> Resolution:
        matches = index.matches(step.kind, step.text, accepts)
        funcs = list({id(e.func): e.func for e in matches}.values())
        return Resolution(runs=funcs, matches=matches, ambiguous=len(funcs) > 1, chosen=matches)

    harness, package = harness_facts(config, discovery.functions)
    facts = SuiteFacts(
        rules=rules,
        runner="registry",
        modules=by_names(discovery.modules, root),
        harness=harness,
        harness_package=package,
        suite_module=lambda name: product_module(name, [root], step_roots),
    )
    suite = Suite(
        runner="registry",
        root=root,
        feature_paths=shown,
        step_paths=sorted({f.path for f in discovery.functions}),
        steps=steps,
        functions=discovery.functions,
        index=index,
        resolve=resolve,
        errors=errors,
        snippet=registry_snippet,
        facts=facts,
    )
    return suite


def detect(root: Path, registry: str) -> bool:
    """Step code under ``steps/`` that imports the registry module."""
    marker = registry
    for path in walk(root / "steps", ".py")[:200] if (root / "steps").is_dir() else []:
        try:
            if marker in path.read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False
