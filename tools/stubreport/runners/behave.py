"""behave, as ``behave --dry-run -f steps.usage`` sees a suite.

- Configuration from ``behave.ini``/``.behaverc``/``setup.cfg``/``tox.ini``/``pyproject.toml`` in the suite
  root (``paths``, ``steps_dir``, ``environment_file``, ``lang``; ``behave.ini`` wins, as in behave).
- The base directory is found as behave finds it (the first path, then up until a ``steps`` directory or
  ``environment.py``). ``environment.py`` is read first: a ``use_step_matcher()`` there becomes the
  default. Then every ``steps/*.py`` in name order, each starting from that default matcher; the
  decorators are behave's (injected, ``from behave import *`` or imported). Step libraries imported by
  a step module (``import behave4cmd0.command_steps``) register their steps at the import, once.
- Matching: behave's own matcher classes (``parse``, ``cfparse``, ``re``, ``re0``, cucumber expressions)
  with the suite's registered types as stand-ins. A step runs the *first* registered definition of its
  type that matches, then the generic ``@step`` ones: never ambiguous. What behave does call ambiguous
  is a definition whose pattern an earlier one of the same type already matches (``AmbiguousStep`` at
  load); those are reported as ambiguous definitions.
- Features are read with ``behave.parser`` itself (lower-case keywords, ``'''`` doc strings, i18n). As
  ``steps.usage`` counts them: Background steps once, every scenario's own steps (Outline rows
  expanded); and the steps of a Rule's Background, which behave runs but ``steps.usage`` forgets (the
  one difference from that formatter: ``verify.py`` leaves them out when it compares).
"""

from __future__ import annotations

import ast
import configparser
import tomllib
from pathlib import Path
from typing import Any

from .. import pyscan, pyscan_model, pysource, pyvalues
from ..config import SuiteConfig
from ..facts import SuiteFacts
from ..matching import StepIndex, behave_spec, stand_ins
from ..model import FeatureStep, Pattern, SourceError, StepFunction
from ..rules import STDLIB, Rules
from ..snippets import behave_snippet
from .base import Resolution, Suite, display, walk
from .pymods import by_names, installed_roots, module_file, product_module, show

DECORATORS = ("given", "when", "then", "step")
EXPORTS = [
    *DECORATORS, *(d.title() for d in DECORATORS), "use_default_step_matcher", "use_step_matcher",
    "register_type", "fixture", "use_fixture", "step_matcher",
]  # fmt: skip
_MATCHER_MODULES = ("behave", "behave.matchers", "behave.api.step_matchers", "behave.step_registry")


def scan_rules() -> pyscan_model.ScanRules:
    registrations: dict[str, str] = {}
    for module in ("behave", "behave.step_registry"):
        for kw in DECORATORS:
            registrations[f"{module}.{kw}"] = kw
            registrations[f"{module}.{kw.title()}"] = kw
    return pyscan_model.ScanRules(
        family="behave",
        registrations=registrations,
        default_parser="parse",
        injected={
            **{kw: f"behave.{kw}" for kw in DECORATORS},
            **{kw.title(): f"behave.{kw.title()}" for kw in DECORATORS},
            "use_step_matcher": "behave.use_step_matcher",
            "step_matcher": "behave.step_matcher",
        },
        star_exports={"behave": EXPORTS},
        use_matcher=frozenset(
            f"{m}.{f}" for m in _MATCHER_MODULES for f in ("use_step_matcher", "step_matcher")
        ),
        register_type=frozenset(f"{m}.register_type" for m in _MATCHER_MODULES),
        define_parameter_type=frozenset(
            {
                "behave.cucumber_expression.define_parameter_type",
                "behave.cucumber_expression.define_parameter_type_with",
            }
        ),
        cucumber_matcher=frozenset({"behave.cucumber_expression.use_step_matcher_for_cucumber_expressions"}),
    )


def read_config(root: Path) -> dict[str, Any]:
    """behave's settings from its config files in ``root`` (``behave.ini`` read last: it wins)."""
    settings: dict[str, Any] = {}
    for name in ("pyproject.toml", "tox.ini", "setup.cfg", ".behaverc", "behave.ini"):
        path = root / name
        if not path.is_file():
            continue
        try:
            if name == "pyproject.toml":
                with path.open("rb") as fh:
                    section = tomllib.load(fh).get("tool", {}).get("behave", {})
                settings.update({k: v for k, v in section.items() if not isinstance(v, dict)})
            else:
                parser = configparser.ConfigParser(interpolation=None)
                parser.read(path, encoding="utf-8")
                if parser.has_section("behave"):
                    for key, value in parser.items("behave"):
                        settings[key] = (
                            [v for v in value.splitlines() if v.strip()] if key == "paths" else value
                        )
        except (OSError, configparser.Error, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
    return settings


def base_dir(first: Path, steps_dir: str, environment: str) -> Path | None:
    current = first.parent if first.is_file() else first
    current = current.resolve()
    while True:
        if (current / steps_dir).is_dir() or (current / environment).is_file():
            return current
        if current.parent == current:
            return None
        current = current.parent


class _Modules:
    """One ModuleInfo per file, found on behave's import path (steps dir, base dir, suite root, site)."""

    def __init__(self, root: Path, search: list[Path], errors: list[SourceError]) -> None:
        self.root, self.search, self.errors = root, search, errors
        self.by_path: dict[Path, pysource.ModuleInfo | None] = {}

    def load(self, path: Path, name: str) -> pysource.ModuleInfo | None:
        key = path.resolve()
        if key not in self.by_path:
            loaded = pysource.load_module(path, show(path, self.root), self.root, name)
            if isinstance(loaded, SourceError):
                self.errors.append(loaded)
                self.by_path[key] = None
            else:
                self.by_path[key] = loaded
        return self.by_path[key]

    def any(self, name: str) -> pysource.ModuleInfo | None:
        path = module_file(name, self.search[: -len(installed_roots()) or None])
        return self.load(path, name) if path is not None else None

    def resolve(self, name: str) -> pysource.ModuleInfo | None:
        top = name.split(".")[0]
        if top in ("behave", "parse", "parse_type", "six") or top in STDLIB:
            return None
        path = module_file(name, self.search)
        if path is None:
            return None
        module = self.load(path, name)
        if module is None or not pysource.interesting(module):
            return None
        return module


def _features(
    paths: list[Path], root: Path, lang: str | None
) -> tuple[list[FeatureStep], list[str], list[SourceError]]:
    from behave.parser import ParserError, parse_file

    steps: list[FeatureStep] = []
    shown: list[str] = []
    errors: list[SourceError] = []
    files: list[Path] = []
    for path in paths:
        files.extend(walk(path, ".feature") if path.is_dir() else [path] if path.is_file() else [])
    for path in files:
        name = display(path, root)
        shown.append(name)
        try:
            feature = parse_file(str(path), language=lang)
        except ParserError as exc:
            errors.append(
                SourceError(name, int(getattr(exc, "line", 0) or 0), str(exc).strip().splitlines()[0])
            )
            continue
        except (OSError, UnicodeDecodeError, KeyError) as exc:
            errors.append(SourceError(name, 0, f"cannot read: {exc}"))
            continue
        if feature is None:
            continue

        def emit(step: Any, scenario: str, background: bool = False, name: str = name) -> None:
            steps.append(
                FeatureStep(
                    path=name,
                    line=step.line,
                    keyword=step.keyword,
                    kind=step.step_type,
                    text=step.name,
                    scenario=scenario,
                    has_table=step.table is not None,
                    has_docstring=step.text is not None,
                    background=background,
                )
            )

        if feature.background:
            for step in feature.background.steps:
                emit(step, "Background", True)
        for rule in (r for r in feature.run_items if type(r).__name__ == "Rule"):
            if rule.background:
                for step in rule.background.steps:
                    emit(step, f"Rule: {rule.name}", True)
        for scenario in feature.walk_scenarios():
            for step in scenario.steps:
                emit(step, scenario.name)
    return steps, shown, errors


def _cucumber_registry(types: dict[str, str]) -> Any:
    try:
        from cucumber_expressions.parameter_type import ParameterType
        from cucumber_expressions.parameter_type_registry import ParameterTypeRegistry
    except ImportError:
        return None
    registry = ParameterTypeRegistry()
    for name, regexp in types.items():
        try:
            registry.define_parameter_type(ParameterType(name, regexp, str, lambda *a: a[0] if a else None))
        except Exception:
            continue
    return registry


def load(config: SuiteConfig, rules: Rules) -> Suite:
    root = config.root
    settings = read_config(root)
    steps_dir = str(settings.get("steps_dir", "steps"))
    environment = str(settings.get("environment_file", "environment.py"))
    raw_paths = config.features or [root / p for p in settings.get("paths", [])] or [root / "features"]
    if isinstance(raw_paths, str):
        raw_paths = [root / raw_paths]
    base = base_dir(raw_paths[0], steps_dir, environment)
    errors: list[SourceError] = []
    if base is None:
        raise LookupError(f"no '{steps_dir}' directory or {environment} at or above {raw_paths[0]}")
    step_dirs = [base / steps_dir]
    if str(settings.get("use_nested_step_modules", "")).lower() in ("1", "true", "yes", "on"):
        step_dirs += [
            d for d in sorted((base / steps_dir).rglob("*")) if d.is_dir() and d.name != "__pycache__"
        ]
    modules = _Modules(root, [*step_dirs, base, root, *installed_roots()], errors)
    discovery = pyscan_model.Discovery()
    state = pyscan.ScanState(scan_rules(), discovery)
    state.resolve = modules.resolve
    state.lookup = modules.any
    hooks: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, pysource.ModuleInfo]] = []
    env_path = base / environment
    if env_path.is_file() and (env := modules.load(env_path, "environment")) is not None:
        discovery.modules.append(env)
        pyscan.Evaluator(env, state).run(env.tree.body, {})
        hooks += [(fn, env) for fn in env.functions.values()]
    default = state.matcher
    step_files: list[Path] = []
    for directory in step_dirs:
        step_files += sorted(p for p in directory.glob("*.py") if p.is_file()) if directory.is_dir() else []
    for path in step_files:
        module = modules.load(path, path.stem)
        state.matcher = default
        if module is None:
            continue
        if module not in discovery.modules:
            discovery.modules.append(module)
        env_vars: dict[str, Any] = {}
        try:
            pyscan.Evaluator(module, state).run(module.tree.body, env_vars)
        except RecursionError:
            errors.append(SourceError(module.display, 0, "too deeply nested to analyse"))
        module.constants = {k: v for k, v in env_vars.items() if pyvalues.known(v)}
    state.matcher = default
    for loaded in modules.by_path.values():
        if loaded is not None and loaded not in discovery.modules:
            discovery.modules.append(loaded)
    pyscan.unresolved_patterns(discovery.functions)
    errors.extend(discovery.errors)

    lang = settings.get("lang")
    feature_steps, shown, feature_errors = _features(raw_paths, root, lang if isinstance(lang, str) else None)
    errors.extend(feature_errors)

    types = stand_ins(discovery.types)
    cucumber = _cucumber_registry(discovery.cucumber_types)
    index = StepIndex.build(discovery.functions, lambda p: behave_spec(p, types, cucumber))
    errors.extend(index.errors)
    conflicts = _conflicts(index)

    def accepts(kind: str, pattern: Pattern) -> bool:
        return pattern.keyword in (kind, "step")

    def resolve(step: FeatureStep) -> Resolution:
        matches = index.matches(step.kind, step.text, accepts)
        first = next((e for e in matches if e.pattern.keyword == step.kind), None)
        first = first or next((e for e in matches if e.pattern.keyword == "step"), None)
        return Resolution(
            runs=[first.func] if first else [], matches=matches, chosen=[first] if first else []
        )

    def run_steps(text: str) -> list[StepFunction]:
        from behave.parser import parse_steps

        try:
            parsed = parse_steps(text, language=lang if isinstance(lang, str) else None)
        except Exception:
            return []
        out: list[StepFunction] = []
        for step in parsed:
            fs = FeatureStep("", 0, step.keyword, step.step_type, step.name, "")
            out.extend(resolve(fs).runs)
        return out

    suite_roots = [root, root / "src"]
    facts = SuiteFacts(
        rules=rules,
        runner="behave",
        modules=by_names(discovery.modules, root),
        suite_module=lambda name: product_module(name, suite_roots, [base]),
        hooks=hooks,
        run_steps=run_steps,
    )
    registrations = len(index.entries)
    return Suite(
        runner="behave",
        root=root,
        feature_paths=shown,
        step_paths=sorted({f.path for f in discovery.functions}),
        steps=feature_steps,
        functions=discovery.functions,
        index=index,
        resolve=resolve,
        errors=errors,
        definition_conflicts=conflicts,
        snippet=behave_snippet,
        facts=facts,
        counts_as_runner={"step definitions": registrations},
        notes=[f"base directory {display(base, root) or '.'}; step modules in {steps_dir}/"],
    )


def _conflicts(index: StepIndex) -> list[tuple[StepFunction, str, list[StepFunction]]]:
    """behave's AmbiguousStep: a new definition whose pattern text an earlier one (same type) matches."""
    found: list[tuple[StepFunction, str, list[StepFunction]]] = []
    for entry in sorted(index.entries, key=lambda e: e.pattern.order):
        text = entry.pattern.text or ""
        keyword = entry.pattern.keyword
        earlier = [
            e for e in index.matches(keyword, text, lambda _k, p, kw=keyword: p.keyword == kw, "same-type")
            if e.pattern.order < entry.pattern.order
            and not (e.func is entry.func and e.pattern.text == entry.pattern.text)
        ]  # fmt: skip
        if earlier:
            found.append((entry.func, f"{keyword}({text!r})", [e.func for e in earlier]))
    return found


def detect(root: Path) -> bool:
    settings = read_config(root)
    steps_dir = str(settings.get("steps_dir", "steps"))
    paths = [root / p for p in settings.get("paths", [])] or [root / "features"]
    return any((p / steps_dir).is_dir() or (p / "environment.py").is_file() for p in paths if p.is_dir())
