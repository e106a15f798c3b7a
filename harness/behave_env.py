"""behave integration: the same step library and the same real cluster as ``pytest --gherkin``.

``features/environment.py`` re-exports the hooks below and ``features/steps/library.py`` calls
:func:`register_steps`. Userdata: ``-D backend=local|docker|auto`` (default auto), ``-D target=NAME``
(default reference), ``-D target_profile=FILE`` (an external deployment), ``-D step_trace=FILE`` (one
JSON line per executed step, see :mod:`harness.trace`) and the load settings ``-D load_workers=N``,
``-D baseline=FILE``, ``-D save_baseline=true``, ``-D load_profiles=FILE`` (:mod:`harness.load.settings`).

Before anything starts, also under ``behave --dry-run`` (which runs no hook), the feature files are
checked: a malformed file (an Outline without Examples, a ``<placeholder>`` no column fills, a step line
before the first Scenario) and every undefined or ambiguous step of the selected scenarios are reported
all at once with ``file:line``, and the run stops with exit code 2. :func:`register_steps` arranges it
by giving behave's runner :class:`CheckedRunner`'s ``run_model``. Each scenario gets its
own :class:`harness.world.World` as ``context.world``; a scenario whose steps need a capability the target
lacks is skipped with the reason. The World is closed in ``after_scenario`` whatever happened (behave also
runs that hook after Ctrl-C; services that survive an abrupt exit are killed by :mod:`harness.processes`'
atexit/signal handlers).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import processes, trace
from harness.log_tails import log_tails
from harness.scenario_context import attachments, set_scenario
from harness.snippets import short_location, snippet, undefined_step_message
from harness.steps_registry import CUSTOM_TYPES, StepDefinition, load_step_library, run_step, settle
from harness.targets.base import CapabilityMissing

_RUN_STATE: dict[str, Any] = {}  # per behave process: trace writer, scratch root


# -- step registration ----------------------------------------------------------------------------------
def _behave_step(definition: StepDefinition) -> Callable[..., Any]:
    func = definition.func

    def step_impl(context: Any, *_fixed: Any, **values: Any) -> Any:
        world = getattr(context, "world", None)
        if world is None:
            raise RuntimeError(
                "no World on the behave context: features/environment.py must use harness.behave_env"
            )
        if "docstring" in definition.params and context.text is not None:
            values["docstring"] = context.text
        if "datatable" in definition.params and context.table is not None:
            table = context.table
            values["datatable"] = [list(table.headings)] + [list(row.cells) for row in table.rows]
        context.servingbdd_definition = definition  # for the step trace
        try:
            return run_step(definition, world, values)
        except CapabilityMissing as exc:  # found at run time: a skip, as before the scenario
            context.scenario.skip(str(exc))
            return None

    step_impl.__name__ = step_impl.__qualname__ = func.__name__
    step_impl.__doc__ = func.__doc__
    step_impl.servingbdd_definition = definition  # type: ignore[attr-defined]
    step_impl.__wrapped__ = func  # type: ignore[attr-defined]  (behave shows the library step's file:line)
    return step_impl


def register_steps() -> int:
    """Register every library step with behave (``parse`` matcher, our custom types); return how many.
    The behave runner loading the steps is made to check the feature files before it runs them."""
    import behave
    from behave import matchers

    definitions = load_step_library()
    matchers.use_step_matcher("parse")
    behave.register_type(**CUSTOM_TYPES)
    for definition in definitions:
        getattr(behave, definition.keyword)(definition.pattern)(_behave_step(definition))
    _install_snippet_maker()
    _check_before_running()
    return len(definitions)


# -- checks before anything runs (also under --dry-run) --------------------------------------------------
class CheckedRunner:
    """Mixed into behave's runner class: its ``run_model`` checks the parsed features first."""

    def run_model(self, features: Any = None) -> Any:
        chosen = self.features if features is None else features  # type: ignore[attr-defined]
        problems = feature_problems(chosen, self.config)  # type: ignore[attr-defined]
        if problems:
            print("\n\n".join(problems), file=sys.stderr)
            print(f"\nservingbdd: {len(problems)} problem(s) in the feature files (above); nothing was run")
            raise SystemExit(2)
        _RUN_STATE["checked"] = True
        return super().run_model(features)  # type: ignore[misc]


def _check_before_running() -> None:
    """Find the behave runner that is loading our steps (up the call stack) and give it the checks. Works
    whatever runner class the project configured; a runner that is not behave's is left alone."""
    import inspect

    from behave.runner import ModelRunner

    frame = inspect.currentframe()
    while frame is not None:
        runner = frame.f_locals.get("self")
        if isinstance(runner, ModelRunner):
            cls = type(runner)
            if not issubclass(cls, CheckedRunner):
                runner.__class__ = type(f"Checked{cls.__name__}", (CheckedRunner, cls), {})
            return
        frame = frame.f_back


def feature_problems(features: Any, config: Any) -> list[str]:
    """Malformed files (``file:line``) and the undefined or ambiguous steps of the selected scenarios."""
    from harness.scenario_check import ScenarioStep, ambiguous_message, lint_feature, resolve_steps

    registry = load_step_library()
    problems: list[str] = []
    for feature in features:
        problems.extend(lint_feature(Path(feature.filename), str(feature.filename), registry))
    if problems:
        return problems
    for feature in features:
        for scenario in feature.walk_scenarios():
            if not scenario.should_run(config):
                continue
            steps = [ScenarioStep(s.step_type, s.name, _location(s), _table(s)) for s in scenario.all_steps]
            resolution = resolve_steps(steps, registry)
            problems.extend(p for p in resolution.setup_problems() if p not in problems)
            for step in resolution.undefined:
                message = undefined_step_message(step.keyword, step.text, step.location, registry)
                if message not in problems:
                    problems.append(message)
            for step, found in resolution.ambiguous:
                message = ambiguous_message(step, found)
                if message not in problems:
                    problems.append(message)
    return problems


def _install_snippet_maker() -> None:
    """Undefined-step snippets written with our registry's decorators, with the step's file:line."""
    from behave import runner_util

    def make_snippet(step: Any, language: str | None = None) -> str:
        if isinstance(step, str):
            return snippet("given", step)
        body = snippet(step.step_type, step.name)
        return f"# {step.location}: {step.keyword} {step.name}\n{body}\n"

    runner_util.make_undefined_step_snippet = make_snippet


# -- hooks --------------------------------------------------------------------------------------------
def before_all(context: Any) -> None:
    from harness.backends.select import choose
    from harness.targets import ProfileError, TargetError, resolve

    userdata = context.config.userdata
    if not _RUN_STATE.get("checked"):  # a runner register_steps could not reach: lint here at least
        _check_feature_files(context)
    try:
        target = resolve(userdata.get("target", "auto"), userdata.get("target_profile"), rootdir=Path.cwd())
    except (TargetError, ProfileError) as exc:
        print(f"servingbdd: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    _RUN_STATE["target"] = target
    print(f"target: {target.name} ({', '.join(sorted(target.capabilities))})", file=sys.stderr)
    backend = userdata.get("backend", "auto")
    _RUN_STATE["backend"] = backend
    if target.needs_backend:
        chosen, notice = choose(backend)
        print(notice, file=sys.stderr)
        target.prepare(chosen, lambda line: print(line, file=sys.stderr))
        if chosen == "docker":  # build missing images now, with progress, not inside the first scenario
            from harness import offline_images

            offline_images.prepare(lambda line: print(line, file=sys.stderr), target.images())
    _configure_load(userdata)
    trace_file = userdata.get("step_trace")
    _RUN_STATE["trace"] = trace.TraceWriter(Path(trace_file)) if trace_file else None
    _RUN_STATE["root"] = Path(tempfile.mkdtemp(prefix="servingbdd-behave-"))
    _RUN_STATE["count"] = 0


def _configure_load(userdata: Any) -> None:
    """``-D load_workers=N -D baseline=FILE -D save_baseline=true -D load_profiles=FILE``: the load steps'."""
    from harness.load import settings

    try:
        settings.configure(
            load_workers=int(userdata.get("load_workers", 0)),
            baseline=userdata.get("baseline"),
            save_baseline=userdata.getbool("save_baseline", False),
            profiles=userdata.get("load_profiles"),
            reports=Path.cwd() / "reports" / "load",
        )
    except ValueError as exc:
        print(f"servingbdd: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _check_feature_files(context: Any) -> None:
    """Malformed feature files are hard errors (file:line), before any scenario runs."""
    from harness.scenario_check import lint_feature

    paths = [Path(p) for p in (context.config.paths or ["features"])]
    files = sorted({f for p in paths for f in ([p] if p.is_file() else p.rglob("*.feature"))})
    problems = [problem for f in files for problem in lint_feature(f, str(f))]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(2)


def before_scenario(context: Any, scenario: Any) -> None:
    from harness.scenario_check import ScenarioStep, resolve_steps, skip_reason
    from harness.world import World

    target = _RUN_STATE["target"]
    steps = [
        ScenarioStep(s.step_type, s.name, _location(s)) for s in [*scenario.background_steps, *scenario.steps]
    ]
    missing = resolve_steps(steps, load_step_library()).missing(target.capabilities)
    if missing:
        scenario.skip(skip_reason(target.name, missing))
        return
    _RUN_STATE["count"] += 1
    workdir = _RUN_STATE["root"] / f"scenario-{_RUN_STATE['count']}"
    backend = None
    if target.needs_backend:
        from harness.backends.select import make_backend

        backend = make_backend(_RUN_STATE["backend"], workdir / "cluster")
    context.world = World(backend, workdir=workdir / "world", target=target)
    set_scenario(context.world, scenario.filename, scenario.name)
    context.add_cleanup(_close_world, context.world)  # runs even when a hook or a step blew up


def _close_world(world: Any) -> None:
    if getattr(world, "_servingbdd_closed", False):
        return
    world._servingbdd_closed = True
    for error in world.close():
        print(f"servingbdd: cleanup failed: {error}", file=sys.stderr)
    for name, value in attachments(world):  # e.g. the run report written when the scenario ended
        print(f"servingbdd: {name}: {value}", file=sys.stderr)


def after_scenario(context: Any, scenario: Any) -> None:
    world = getattr(context, "world", None)
    writer = _RUN_STATE.get("trace")
    for step in scenario.steps:  # undefined steps never reach before_step: record them here
        if step.status.name == "undefined":
            location = _location(step)
            message = undefined_step_message(step.step_type, step.name, location, load_step_library())
            print(f"\n{message}\n", file=sys.stderr)
            if writer is not None:
                with trace.step(step.step_type, step.name, location, "") as record:
                    record.status = "undefined"
                writer.write(record)
    try:
        if world is not None and scenario.status.name == "passed":
            settle(world)  # a scenario made only of setup steps still starts what they describe
    finally:
        trace.forget_deferred()
        if writer is not None:
            writer.flush()
    if world is None:
        return
    if scenario.status.name == "failed":
        tails = "\n".join(f"----- {title} -----\n{text}" for title, text in log_tails(world))
        print(f"\nservingbdd: scenario failed: {scenario.name}\n{tails}", file=sys.stderr)
    _close_world(world)


def _table(step: Any) -> tuple[tuple[str, ...], ...] | None:
    table = step.table
    if table is None:
        return None
    return (tuple(table.headings), *(tuple(row.cells) for row in table.rows))


def _location(step: Any) -> str:
    return f"{step.location.filename}:{step.location.line}"


def before_step(context: Any, step: Any) -> None:
    context.servingbdd_definition = None
    cm = trace.step(step.step_type, step.name, _location(step), "")
    context.servingbdd_step = (cm, cm.__enter__())


def _function_location(definition: StepDefinition | None) -> str:
    return "" if definition is None else short_location(definition.location)


def after_step(context: Any, step: Any) -> None:
    opened = getattr(context, "servingbdd_step", None)
    if opened is None:
        return
    context.servingbdd_step = None
    cm, record = opened
    record.status = "passed" if step.status.name == "passed" else "failed"
    record.function = _function_location(getattr(context, "servingbdd_definition", None))
    cm.__exit__(None, None, None)
    writer = _RUN_STATE.get("trace")
    if writer is not None:
        writer.write(record)


def after_all(context: Any) -> None:
    """Kill any service process a scenario left behind (normally none: every World was closed), and
    remove the run's scratch root (logs, catalogs, artifact copies)."""
    processes.kill_all()
    root = _RUN_STATE.get("root")
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
