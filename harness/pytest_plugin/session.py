"""Configuration of a ``pytest --gherkin`` run: the features to collect, the target, the step library,
the Gherkin reporter; and, on docker, the images built before the first scenario."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from harness import trace
from harness.pytest_plugin.options import gherkin_enabled
from harness.pytest_plugin.reporter import use_gherkin_reporter
from harness.pytest_plugin.reports import ProgressTracker, configure_reports
from harness.pytest_plugin.state import STATE, RunState, run_state


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists, so that it can be replaced
def pytest_configure(config: pytest.Config) -> None:
    if not gherkin_enabled(config):
        return
    from harness.steps_registry import use_project
    from harness.targets import ProfileError, TargetError, resolve

    features = Path(config.getoption("servingbdd_features") or config.rootpath / "features")
    if not features.is_absolute():
        features = Path(config.invocation_params.dir) / features
    if config.args_source != pytest.Config.ArgsSource.ARGS:  # no explicit paths: run the features dir
        config.args[:] = [str(features)]
        config.args_source = pytest.Config.ArgsSource.ARGS  # so the header does not claim "testpaths: tests"
    try:
        target = resolve(
            config.getoption("target"), config.getoption("target_profile"), rootdir=config.rootpath
        )
    except (TargetError, ProfileError) as exc:
        pytest.exit(f"servingbdd: {exc}", returncode=2)
    trace_file = config.getoption("step_trace")
    config.stash[STATE] = RunState(
        features_dir=features,
        target=target,
        trace=trace.TraceWriter(Path(trace_file)) if trace_file else None,
    )
    if config.option.tbstyle == "auto":  # the step's own frame and message, not pytest-bdd's machinery
        config.option.tbstyle = "short"
    use_project(config.rootpath)
    # Importing the module registers every library step with pytest-bdd (a loop at its module level).
    fixtures = importlib.import_module("harness.pytest_plugin.step_fixtures")
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "servingbdd-steps")
    load = importlib.import_module("harness.pytest_plugin.load")  # load settings, reports in JUnit/Cucumber
    if not config.pluginmanager.is_registered(load):
        config.pluginmanager.register(load, "servingbdd-load")
    use_gherkin_reporter(config)
    config.pluginmanager.register(ProgressTracker(config), "servingbdd-progress")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = run_state(config)
    if state is None:
        return None
    lines = [f"target: {state.target.name} ({', '.join(sorted(state.target.capabilities))})"]
    if state.target.needs_backend:
        from harness.backends.select import choose

        lines.append(choose(config.getoption("backend"))[1])
    return lines


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before the first scenario, with progress on the terminal: the target's own set-up, and on docker the
    missing images."""
    state = run_state(session.config)
    if state is not None:
        configure_reports(session.config)  # after every plugin's pytest_configure (pytest-bdd's writer)
    if state is None or not state.target.needs_backend or session.config.option.collectonly:
        return  # --collect-only checks the scenarios and starts nothing
    from harness.backends.select import choose

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    echo = reporter.write_line if reporter is not None else print
    backend = choose(session.config.getoption("backend"))[0]
    try:
        state.target.prepare(backend, echo)
    except Exception as exc:  # a venv that cannot be made: one line, before any scenario
        pytest.exit(f"servingbdd: preparing the {state.target.name} target failed: {exc}", returncode=1)
    if backend != "docker":
        return
    from harness import offline_images
    from harness.docker_images import ImageBuildError

    try:
        offline_images.prepare(echo, state.target.images())
    except ImageBuildError as exc:
        pytest.exit(f"docker images: {exc}", returncode=1)
