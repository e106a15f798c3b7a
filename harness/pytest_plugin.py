"""pytest integration: ``pytest --gherkin`` runs the scenarios of ``features/`` on a real cluster.

* ``--gherkin`` collects every ``.feature`` file under ``--features`` (default ``features/``) through
  pytest-bdd, registers every step of :data:`harness.steps_registry.REGISTRY` with pytest-bdd, and prints
  the scenarios as Gherkin with a mark per step. Without it, plain ``pytest`` runs only ``tests/``.
* ``--backend local|docker|auto`` picks the cluster backend (a one-line notice says which and why).
* ``--step-trace FILE`` appends one JSON line per executed step (see :mod:`harness.trace`).
* The ``world`` fixture gives each scenario its own :class:`harness.world.World`, closed at teardown even
  on failure; a failed scenario's report carries the log tail of every service.
* An undefined step fails with its text, its ``file:line`` and a snippet to paste into ``steps/``.
"""

from __future__ import annotations

import inspect
import time
import types
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

from harness import trace
from harness.log_tails import log_tails
from harness.snippets import short_location, undefined_step_message
from harness.steps_registry import CUSTOM_TYPES, StepDefinition, load_step_library

WORLD_KEY = pytest.StashKey["Any"]()


# -- options ------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("servingbdd", "servingbdd acceptance features")
    group.addoption(
        "--gherkin",
        action="store_true",
        default=False,
        help="run the feature scenarios (from --features) on a real cluster and print them as Gherkin",
    )
    group.addoption(
        "--backend",
        choices=("local", "docker", "auto"),
        default="auto",
        help="cluster backend for the scenarios (default: auto = docker when an engine answers, else local)",
    )
    group.addoption(
        "--features",
        dest="servingbdd_features",  # pytest-bdd's --feature already owns dest "features"
        default=None,
        metavar="DIR",
        help="feature files directory (default: features/)",
    )
    group.addoption(
        "--step-trace", default=None, metavar="FILE", help="append one JSON line per executed step"
    )


def _gherkin(config: pytest.Config) -> bool:
    return bool(config.getoption("gherkin", default=False))


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists, so that it can be replaced
def pytest_configure(config: pytest.Config) -> None:
    if not _gherkin(config):
        return
    features = Path(config.getoption("servingbdd_features") or config.rootpath / "features")
    if not features.is_absolute():
        features = Path(config.invocation_params.dir) / features
    if config.args_source != pytest.Config.ArgsSource.ARGS:  # no explicit paths: run the features dir
        config.args[:] = [str(features)]
        config.args_source = pytest.Config.ArgsSource.ARGS  # so the header does not claim "testpaths: tests"
    trace_file = config.getoption("step_trace")
    state = _RunState(
        features_dir=features, trace=trace.TraceWriter(Path(trace_file)) if trace_file else None
    )
    config.stash[_STATE] = state
    if config.option.tbstyle == "auto":  # the step's own frame and message, not pytest-bdd's machinery
        config.option.tbstyle = "short"
    config.pluginmanager.register(_step_fixture_module(load_step_library()), "servingbdd-steps")
    _use_gherkin_reporter(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _gherkin(config):
        return None
    from harness.backends.select import choose

    return choose(config.getoption("backend"))[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """On docker, build missing images before the first scenario, with progress on the terminal."""
    config = session.config
    if not _gherkin(config):
        return
    from harness.backends.select import choose

    if choose(config.getoption("backend"))[0] != "docker":
        return
    from harness import offline_images
    from harness.docker_images import ImageBuildError

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    echo = reporter.write_line if reporter is not None else print
    try:
        offline_images.prepare(echo)
    except ImageBuildError as exc:
        pytest.exit(f"docker images: {exc}", returncode=1)


# -- collection: one pytest Module per .feature file, filled by pytest_bdd.scenarios ------------------
class FeatureModule(pytest.Module):
    """A ``.feature`` file collected as if it were a test module calling ``scenarios(<file>)``."""

    def _getobj(self) -> types.ModuleType:
        from pytest_bdd import scenarios

        module = types.ModuleType(f"features.{self.path.stem}")
        module.__file__ = str(self.path)
        namespace = module.__dict__
        namespace.update(_scenarios=scenarios, _path=str(self.path), _base=str(self.path.parent))
        # scenarios() puts the test functions into its caller's module namespace: run it at "module level".
        exec("_scenarios(_path, features_base_dir=_base)", namespace)
        return module


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".feature" and _gherkin(parent.config):
        return FeatureModule.from_parent(parent, path=file_path)
    return None


# -- step registration ----------------------------------------------------------------------------------
def _pytest_bdd_step(definition: StepDefinition) -> Callable[..., Any]:
    """Wrap a library step so that pytest-bdd passes the ``world`` fixture first and the parsed values."""
    func = definition.func

    def step_impl(world: Any, **values: Any) -> Any:
        __tracebackhide__ = True
        return func(world, **values)

    params = [inspect.Parameter("world", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in definition.params]
    step_impl.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    step_impl.__name__ = step_impl.__qualname__ = func.__name__
    step_impl.__module__ = func.__module__
    step_impl.__doc__ = func.__doc__
    step_impl.servingbdd_definition = definition  # type: ignore[attr-defined]
    return step_impl


def _step_fixture_module(definitions: Iterable[StepDefinition]) -> types.ModuleType:
    """A plugin module holding one pytest-bdd step fixture per registry entry (visible to every test)."""
    import pytest_bdd
    from pytest_bdd import parsers

    module = types.ModuleType("servingbdd_steps")
    namespace = module.__dict__
    namespace.update(
        _entries=[
            (
                getattr(pytest_bdd, d.keyword),
                parsers.parse(d.pattern, extra_types=CUSTOM_TYPES, case_sensitive=True),
                _pytest_bdd_step(d),
            )
            for d in definitions
        ]
    )
    # pytest-bdd's decorators store the step fixture in the caller's module namespace (stacklevel=1):
    # run the loop at "module level" of this namespace.
    exec(
        "for _decorator, _parser, _impl in _entries:\n    _decorator(_parser, stacklevel=1)(_impl)", namespace
    )
    return module


# -- the World ------------------------------------------------------------------------------------------
@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Generator[Any, None, None]:
    """One World per scenario, with a fresh backend; closed at teardown whatever happened."""
    from harness.backends.select import make_backend
    from harness.world import World

    backend = make_backend(request.config.getoption("backend"), tmp_path / "cluster")
    the_world = World(backend, workdir=tmp_path / "world")
    request.node.stash[WORLD_KEY] = the_world
    try:
        yield the_world
    finally:
        errors = the_world.close()
        if errors:
            request.node.add_report_section("teardown", "world cleanup", "\n".join(errors))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    the_world = item.stash.get(WORLD_KEY, None)
    if report.failed and report.when in ("setup", "call") and the_world is not None:
        report.sections.extend(log_tails(the_world))
    return report


# -- per-step tracing and statuses --------------------------------------------------------------------
@dataclass
class _ScenarioRecord:
    steps: list[tuple[str, str, int]]  # keyword, text, line
    status: dict[int, str] = field(default_factory=dict)  # line -> passed | failed | undefined
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _RunState:
    features_dir: Path
    trace: trace.TraceWriter | None
    scenarios: dict[str, _ScenarioRecord] = field(default_factory=dict)  # nodeid -> record
    active: dict[str, tuple[Any, trace.StepTrace]] = field(default_factory=dict)  # nodeid -> open step


_STATE = pytest.StashKey[_RunState]()


def _state(request: pytest.FixtureRequest) -> _RunState | None:
    return request.config.stash.get(_STATE, None)


def _rel(config: pytest.Config, path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(config.rootpath))
    except ValueError:
        return path


def _function_location(config: pytest.Config, step_func: Callable[..., Any]) -> str:
    definition = getattr(step_func, "servingbdd_definition", None)
    if definition is not None:
        return short_location(definition.location)
    code = step_func.__code__
    return short_location(f"{code.co_filename}:{code.co_firstlineno}")


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    state = _state(request)
    if state is not None:
        steps = [(s.keyword.strip(), s.name, s.line_number) for s in scenario.steps]
        state.scenarios[request.node.nodeid] = _ScenarioRecord(steps)


def pytest_bdd_before_step_call(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Callable[..., Any],
    **_: Any,
) -> None:
    state = _state(request)
    if state is None:
        return
    location = f"{_rel(request.config, feature.filename)}:{step.line_number}"
    context = trace.step(step.type, step.name, location, _function_location(request.config, step_func))
    state.active[request.node.nodeid] = (context, context.__enter__())


def _end_step(request: pytest.FixtureRequest, feature: Any, step: Any, step_func: Any, status: str) -> None:
    state = _state(request)
    if state is None:
        return
    record = state.scenarios.get(request.node.nodeid)
    if record is not None:
        record.status[step.line_number] = status
    opened = state.active.pop(request.node.nodeid, None)
    if opened is None:  # failed before the call (argument parsing, fixtures): a record all the same
        location = f"{_rel(request.config, feature.filename)}:{step.line_number}"
        function = _function_location(request.config, step_func) if step_func is not None else ""
        context = trace.step(step.type, step.name, location, function)
        opened = (context, context.__enter__())
    context, step_trace = opened
    step_trace.status = status
    context.__exit__(None, None, None)
    if state.trace is not None:
        state.trace.write(step_trace)


def pytest_bdd_after_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, **_: Any
) -> None:
    _end_step(request, feature, step, step_func, "passed")


def pytest_bdd_step_error(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, **_: Any
) -> None:
    _end_step(request, feature, step, step_func, "failed")


def pytest_bdd_step_func_lookup_error(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, exception: Exception
) -> None:
    """Make the failure say which step, where, and what to paste into ``steps/``."""
    location = f"{_rel(request.config, feature.filename)}:{step.line_number}"
    exception.args = (undefined_step_message(step.type, step.name, location, load_step_library()),)
    _end_step(request, feature, step, None, "undefined")


# -- Gherkin terminal output ------------------------------------------------------------------------
_MARKS = {
    "passed": ("✓", {"green": True}),
    "failed": ("✗", {"red": True}),
    "undefined": ("?", {"yellow": True}),
}
_SKIPPED = ("-", {"yellow": True})


def _use_gherkin_reporter(config: pytest.Config) -> None:
    current = config.pluginmanager.getplugin("terminalreporter")
    if current is None or current.__class__ is not TerminalReporter:
        return  # another reporter (xdist, a custom one): keep it, the scenarios still run
    config.pluginmanager.unregister(current)
    config.pluginmanager.register(GherkinReporter(config), "terminalreporter")


class GherkinReporter(TerminalReporter):
    """Prints each scenario as Gherkin with a mark per step, then the outcome (other tests as usual)."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self._show_progress_info = False  # the scenario blocks replace the per-file progress line
        self._last_feature: str | None = None

    def write_fspath_result(self, nodeid: str, res: Any, **markup: bool) -> None:
        if ".feature" not in nodeid.split("::", 1)[0]:  # scenario blocks name their feature themselves
            super().write_fspath_result(nodeid, res, **markup)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.config.stash.get(_STATE, None)
        record = state.scenarios.get(report.nodeid) if state else None
        if record is None or report.when != "call":
            return super().pytest_runtest_logreport(report)
        from pytest_bdd.reporting import test_report_context_registry

        context = test_report_context_registry.get(report)
        scenario = context.scenario if context else {}
        feature = scenario.get("feature", {})
        self.ensure_newline()
        if feature.get("name") != self._last_feature:
            self._tw.write(
                f"\n{feature.get('keyword', 'Feature')}: {feature.get('name', '')}\n", blue=True, bold=True
            )
            self._last_feature = feature.get("name")
        outcome_markup = {"green": True} if report.passed else {"red": True}
        title = scenario.get("name", report.nodeid)
        self._tw.write(f"    {scenario.get('keyword', 'Scenario')}: {title}", **outcome_markup)
        if "[" in report.nodeid:
            self._tw.write(f"  [{report.nodeid.rsplit('[', 1)[1]}", **outcome_markup)
        self._tw.write("\n")
        for keyword, text, line in record.steps:
            mark, markup = _MARKS.get(record.status.get(line, ""), _SKIPPED)
            self._tw.write(f"      {mark} {keyword} {text}\n", **markup)
        word = "PASSED" if report.passed else ("FAILED" if report.failed else "SKIPPED")
        self._tw.write(f"    {word} in {report.duration:.1f} s\n", **outcome_markup)
        self.stats.setdefault(report.outcome, []).append(report)
        return None
