"""pytest-bdd (8 and 9), as its own step lookup resolves a suite.

- Test modules are the files pytest collects (``python_files``, default ``test_*.py *_test.py``, under
  ``testpaths`` when set); a feature runs only when a test module binds it with ``scenarios(...)`` or
  ``@scenario(...)`` (paths relative to ``bdd_features_base_dir`` or the module). Features no test binds
  are listed as unbound, not as undefined: pytest-bdd never runs them.
- A step definition is a fixture in the namespace of the module whose decorator ran. A test sees the
  fixtures of its own module, of the ``conftest.py`` files from its directory up to the root, and of
  ``pytest_plugins``; ``from x import *`` copies them (unless ``x`` has an ``__all__``). Importing a
  step function by name does *not* make it visible (pytest-bdd's fixture is not that function).
- Among the visible definitions that match, pytest-bdd takes the closest one (test module, then the
  nearest conftest, then plugins; the last registered on a tie): never ambiguous.
- Parsers: ``string`` (default), ``parsers.parse``/``cfparse``/``re`` with their ``extra_types``;
  features are read with pytest-bdd's rules on gherkin-official's grammar.
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import tomllib
from pathlib import Path
from typing import Any

from .. import gherkin_reader, pyscan, pyscan_model, pysource
from ..config import SuiteConfig
from ..facts import SuiteFacts
from ..matching import StepIndex, pytest_bdd_spec, stand_ins
from ..model import FeatureStep, Pattern, SourceError, StepFunction
from ..rules import Rules
from ..snippets import pytest_bdd_snippet
from .base import Resolution, Suite, display, walk
from .pymods import by_names, installed_roots, module_file, product_module, show

TEST_DIR_NAMES = frozenset(
    {"tests", "test", "testing", "steps", "features", "bdd", "acceptance", "functional"}
)


def scan_rules() -> pyscan_model.ScanRules:
    registrations: dict[str, str] = {}
    for module in ("pytest_bdd", "pytest_bdd.steps"):
        for kw in ("given", "when", "then", "step"):
            registrations[f"{module}.{kw}"] = kw
    parsers = {
        f"{m}.{k}": k
        for m in ("pytest_bdd.parsers", "pytest_bdd.parser")
        for k in ("parse", "cfparse", "re", "string")
    }
    bindings = {}
    for module in ("pytest_bdd", "pytest_bdd.scenario"):
        bindings[f"{module}.scenarios"] = "scenarios"
        bindings[f"{module}.scenario"] = "scenario"
    return pyscan_model.ScanRules(
        family="pytest_bdd",
        registrations=registrations,
        default_parser="string",
        star_exports={"pytest_bdd": ["given", "when", "then", "step", "scenario", "scenarios", "parsers"]},
        parsers=parsers,
        bindings=bindings,
    )


def read_ini(root: Path) -> dict[str, Any]:
    """pytest's ini options from the first file that has a pytest section (pytest's own order)."""
    candidates = (
        ("pytest.ini", "pytest"),
        ("pyproject.toml", None),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    )
    for name, section in candidates:
        path = root / name
        if not path.is_file():
            continue
        try:
            if section is None:
                with path.open("rb") as fh:
                    options = tomllib.load(fh).get("tool", {}).get("pytest", {}).get("ini_options")
                if isinstance(options, dict):
                    return dict(options)
                continue
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(path, encoding="utf-8")
            if parser.has_section(section):
                return dict(parser.items(section))
            if name == "pytest.ini":
                return {}
        except (OSError, configparser.Error, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
    return {}


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split()


def _is_test_module(path: Path, root: Path, globs: list[str]) -> bool:
    rel = display(path, root)
    return any(fnmatch.fnmatch(path.name, g) if "/" not in g else fnmatch.fnmatch(rel, g) for g in globs)


def _basedir(path: Path) -> Path:
    """pytest's rootdir-less import: the first directory up without an ``__init__.py``."""
    current = path.parent
    while (current / "__init__.py").is_file() and current.parent != current:
        current = current.parent
    return current


def _module_name(path: Path) -> str:
    base = _basedir(path)
    rel = path.relative_to(base).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class _Loader:
    def __init__(self, root: Path, errors: list[SourceError]) -> None:
        self.root, self.errors = root, errors
        self.by_path: dict[Path, pysource.ModuleInfo | None] = {}
        self.by_name: dict[str, pysource.ModuleInfo] = {}
        self.search: list[Path] = [root, root / "src"]

    def load(self, path: Path) -> pysource.ModuleInfo | None:
        key = Path(os.path.abspath(path))
        if key not in self.by_path:
            loaded = pysource.load_module(path, show(path, self.root), self.root, _module_name(path))
            if isinstance(loaded, SourceError):
                self.errors.append(loaded)
                self.by_path[key] = None
            else:
                self.by_path[key] = loaded
                self.by_name.setdefault(loaded.module_name, loaded)
                base = _basedir(path)
                if base not in self.search:
                    self.search.append(base)
        return self.by_path[key]

    def resolve(self, name: str) -> pysource.ModuleInfo | None:
        if name in self.by_name:
            return self.by_name[name]
        path = module_file(name, [*self.search, *installed_roots()])
        if path is None:
            return None
        module = self.load(path)
        if module is not None:
            self.by_name[name] = module
        return module


def load(config: SuiteConfig, rules: Rules) -> Suite:
    root = config.root
    ini = read_ini(root)
    globs = _list(ini.get("python_files")) or ["test_*.py", "*_test.py"]
    testpaths = [root / p for p in _list(ini.get("testpaths"))]
    errors: list[SourceError] = []
    loader = _Loader(root, errors)
    scopes = [*testpaths] if testpaths else [root]
    files = [p for scope in scopes for p in walk(scope, ".py")]
    tests = [p for p in files if _is_test_module(p, root, globs)]
    conftests = [p for p in walk(root, "conftest.py")]
    test_dirs = tuple(sorted({str(p.parent) + os.sep for p in [*tests, *conftests]}))
    taken = {*tests, *conftests}
    support = [
        p for p in files
        if p not in taken
        and (str(p).startswith(test_dirs) or TEST_DIR_NAMES & set(p.relative_to(root).parts[:-1]))
    ]  # fmt: skip
    discovery = pyscan_model.Discovery()
    state = pyscan.ScanState(scan_rules(), discovery)
    state.lookup = loader.resolve
    scanned: list[pysource.ModuleInfo] = []
    for path in [*conftests, *tests, *support]:
        module = loader.load(path)
        if module is not None and module not in scanned:
            scanned.append(module)
    # modules reached by star imports and pytest_plugins are scanned too (they carry fixtures)
    queue = list(scanned)
    while queue:
        module = queue.pop()
        for name in [*module.star_imports, *_plugin_names(module)]:
            target = loader.resolve(name)
            if target is not None and target not in scanned:
                scanned.append(target)
                queue.append(target)
    for module in scanned:
        discovery.modules.append(module)
        pyscan.evaluate(module, state)
    scanned_paths = [m.path for m in scanned]
    pyscan.unresolved_patterns(discovery.functions)
    errors.extend(discovery.errors)

    base_ini = ini.get("bdd_features_base_dir")
    by_display = {m.display: m for m in scanned}
    test_displays = {loader.load(p).display for p in tests if loader.load(p) is not None}  # type: ignore[union-attr]
    parsed: dict[Path, list[FeatureStep] | None] = {}
    skipped: list[str] = []
    wanted: dict[tuple[str, Path], set[str] | None] = {}  # (module, feature) -> scenarios (None: all)
    for binding in discovery.bindings:
        if binding.module not in test_displays:
            continue  # scenarios() in a conftest or helper does not make tests pytest collects
        module = by_display[binding.module]
        base = (
            Path(binding.base_dir)
            if binding.base_dir
            else (root / base_ini if isinstance(base_ini, str) and base_ini else module.path.parent)
        )
        for raw in binding.paths:
            target = (base / raw) if not os.path.isabs(raw) else Path(raw)
            found = (
                sorted(target.rglob("*.feature")) if target.is_dir() else [target] if target.is_file() else []
            )
            if not found:
                errors.append(
                    SourceError(binding.module, binding.line, f"no feature file at {display(target, root)}")
                )
                continue
            for feature in found:
                if feature not in parsed:
                    parsed[feature] = _read(feature, root, errors, skipped, binding.module)
                key = (binding.module, feature)
                if binding.scenario is None:
                    wanted[key] = None
                elif wanted.get(key, set()) is not None:
                    if not any(s.scenario == binding.scenario for s in parsed[feature] or []):
                        errors.append(
                            SourceError(
                                binding.module, binding.line, f"scenario {binding.scenario!r} not found"
                            )
                        )
                    wanted.setdefault(key, set()).add(binding.scenario)  # type: ignore[union-attr]
    steps: list[FeatureStep] = []
    for (module_display, feature), names in wanted.items():
        for step in parsed[feature] or []:
            if names is None or step.scenario in names:
                # expanded for the first module that binds the feature (usually the only one)
                steps.append(step if step.binding == module_display else _bound(step, module_display))
    bound = {os.path.abspath(feature) for _, feature in wanted}
    unbound = [display(p, root) for p in walk(root, ".feature") if os.path.abspath(p) not in bound]

    visible = _visibility(scanned, loader, test_displays, root)
    types = stand_ins(discovery.types)
    index = StepIndex.build(discovery.functions, lambda p: pytest_bdd_spec(p, types))
    errors.extend(index.errors)

    def accepts(kind: str, pattern: Pattern) -> bool:
        return pattern.keyword in (kind, "step")

    def resolve(step: FeatureStep) -> Resolution:
        matches = index.matches(step.kind, step.text, accepts, "pb")
        scope = visible.get(step.binding, {})
        seen_here = [
            (scope[e.pattern.namespace], _fixture_name(e.pattern), e)
            for e in matches
            if e.pattern.namespace in scope
        ]
        if not seen_here:
            note = "defined, but not visible to this test module" if matches else ""
            return Resolution(runs=[], matches=matches, note=note)
        # pytest-bdd takes the last of the matching fixtures sorted by closeness; pytest registered them
        # module by module (plugins in their order) and, within a module, in ``dir()`` order
        chosen = max(seen_here, key=lambda item: (item[0], item[1]))[2]
        others = [e for _, _, e in seen_here if e.func is not chosen.func]
        note = f"shadows {len(others)} other visible definition(s)" if others else ""
        return Resolution(runs=[chosen.func], matches=matches, note=note, chosen=[chosen])

    visible_anywhere = {ns for scope in visible.values() for ns in scope}
    imported = _imported(scanned, loader, test_displays)
    for func in discovery.functions:
        if not any(p.namespace in visible_anywhere for p in func.patterns):
            func.reasons.append("no test module sees it (not in a conftest, a test module or a star import)")
    fixtures: dict[str, list[tuple[Any, pysource.ModuleInfo]]] = {}
    for module in scanned:
        for name, fn in module.fixtures.items():
            fixtures.setdefault(name, []).append((fn, module))
    targets: dict[str, list[StepFunction]] = {}
    for func in discovery.functions:
        target = getattr(func, "target_fixture", None)
        if target:
            targets.setdefault(target, []).append(func)
    facts = SuiteFacts(
        rules=rules,
        runner="pytest_bdd",
        modules=by_names(scanned, root),
        suite_module=lambda name: product_module(
            name, loader.search, sorted({p.parent for p in scanned_paths})
        ),
        fixtures=fixtures,
        target_fixtures=targets,
    )
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} scenario(s) tagged @skip (pytest-bdd never runs them): not counted")
    if unbound:
        notes.append(f"{len(unbound)} feature file(s) bound by no test module (pytest-bdd never runs them)")
    return Suite(
        runner="pytest-bdd",
        root=root,
        feature_paths=sorted({s.path for s in steps} | {display(p, root) for p in parsed}),
        step_paths=sorted({f.path for f in discovery.functions}),
        steps=steps,
        functions=discovery.functions,
        index=index,
        resolve=resolve,
        errors=errors,
        unbound=unbound,
        snippet=pytest_bdd_snippet,
        facts=facts,
        notes=notes,
        counts_as_runner={"step definitions": len(index.entries)},
        never_imported={m.display for m in scanned} - imported,
    )


def _bound(step: FeatureStep, module: str) -> FeatureStep:
    return step._replace(binding=module)


def _read(
    path: Path, root: Path, errors: list[SourceError], skipped: list[str], module: str
) -> list[FeatureStep] | None:
    name = display(path, root)
    source, problems = gherkin_reader.read_source(path, name)
    errors.extend(problems)
    if source is None:
        return None
    doc, problems = gherkin_reader.parse_document(source, name)
    errors.extend(problems)
    if doc is None:
        return None
    steps, problems = gherkin_reader.expand_pytest_bdd(doc, name, skipped, module)
    errors.extend(problems)
    return steps


def _imported(modules: list[pysource.ModuleInfo], loader: _Loader, tests: set[str]) -> set[str]:
    """Modules pytest imports: test modules, conftests, plugins and whatever they import."""
    seen: set[str] = set()
    pending = [m for m in modules if m.display in tests or m.path.name == "conftest.py"]
    while pending:
        module = pending.pop()
        if module.display in seen:
            continue
        seen.add(module.display)
        names = [*module.star_imports, *_plugin_names(module), *module.imports.values()]
        for name in names:
            for candidate in (name, name.rpartition(".")[0]):
                target = loader.by_name.get(candidate) if candidate else None
                if target is not None:
                    pending.append(target)
    return seen


def _fixture_name(pattern: Pattern) -> str:
    keyword = "*" if pattern.keyword == "step" else pattern.keyword
    return f"pytestbdd_stepdef_{keyword}_{pattern.text}"


def _plugin_names(module: pysource.ModuleInfo) -> list[str]:
    if module.plugins:
        return module.plugins
    # pytest_plugins read before the evaluator ran: a literal list at module level
    import ast

    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in stmt.targets
        ):
            value = stmt.value
            items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
            return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
    return []


def _visibility(
    modules: list[pysource.ModuleInfo], loader: _Loader, tests: set[str], root: Path
) -> dict[str, dict[str, tuple[int, int]]]:
    """For each test module: the namespaces whose step fixtures it sees, with (closeness, the order
    pytest registered their module in)."""
    namespaces: dict[str, set[str]] = {}

    def namespace(module: pysource.ModuleInfo, stack: tuple[str, ...] = ()) -> set[str]:
        if module.display in namespaces:
            return namespaces[module.display]
        found = {module.display}
        for name in module.star_imports:
            target = loader.resolve(name)
            if target is None or target.display in stack:
                continue
            if target.exports is None:
                found |= namespace(target, (*stack, module.display))
        namespaces[module.display] = found
        return found

    plugins: dict[str, int] = {}  # namespace -> registration order
    pending = [m for m in sorted(modules, key=lambda m: len(m.path.parts)) if m.path.name == "conftest.py"]
    done: set[str] = set()
    while pending:
        module = pending.pop(0)
        if module.display in done:
            continue
        done.add(module.display)
        for name in _plugin_names(module):
            target = loader.resolve(name)
            if target is not None:
                order = len(done) * 1000 + len(plugins)
                for ns in namespace(target):
                    plugins.setdefault(ns, order)
                pending.append(target)
    conftests = {m.path.parent.resolve(): m for m in modules if m.path.name == "conftest.py"}
    out: dict[str, dict[str, tuple[int, int]]] = {}
    resolved_root = root.resolve()
    for module in modules:
        if module.display not in tests:
            continue
        scope: dict[str, tuple[int, int]] = {ns: (0, order) for ns, order in plugins.items()}
        directory = module.path.parent.resolve()
        chain = [
            d for d in [directory, *directory.parents] if d == resolved_root or resolved_root in d.parents
        ]
        for depth, folder in enumerate(reversed(chain)):
            if folder in conftests:
                for ns in namespace(conftests[folder]):
                    scope[ns] = max(scope.get(ns, (0, 0)), (depth + 1, 0))
        for ns in namespace(module):
            scope[ns] = (1000, 0)
        out[module.display] = scope
    return out


def detect(root: Path) -> bool:
    for path in walk(root, ".py")[:5000]:
        if (
            path.name.startswith(("test_", "conftest"))
            or path.name.endswith("_test.py")
            or "steps" in path.parts
        ):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if "pytest_bdd" in text:
                return True
    return False
