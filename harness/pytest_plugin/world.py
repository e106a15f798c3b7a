"""The ``world`` fixture: one World per scenario, on a fresh backend, closed whatever happened; and the
services' log tails attached to a failed scenario's report (terminal, JUnit ``system-err``)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.log_tails import log_tails
from harness.pytest_plugin.state import run_state

WORLD_KEY = pytest.StashKey[Any]()


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Generator[Any, None, None]:
    """One World per scenario, on the run's target, with a fresh backend; closed at teardown."""
    from harness.world import World

    state = run_state(request.config)
    target = state.target if state is not None else None
    backend = None
    if target is None or target.needs_backend:
        from harness.backends.select import make_backend

        backend = make_backend(request.config.getoption("backend"), tmp_path / "cluster")
    the_world = World(backend, workdir=tmp_path / "world", target=target)
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
        # "Captured stderr" sections are what the JUnit XML writes into <system-err> (their content only:
        # each one starts with its title, so that the reader there knows which service it is)
        for title, text in log_tails(the_world):
            report.sections.append((f"Captured stderr {title}", f"===== {title} =====\n{text}"))
    return report
