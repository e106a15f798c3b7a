"""The harness's pytest plugin (entry point ``servingbdd`` in the ``pytest11`` group).

``pytest --gherkin`` collects each ``.feature`` file of ``features/`` (or ``--features DIR``, or the
paths given) as a module of scenarios run by pytest-bdd, on the target chosen with ``--target`` /
``--target-profile`` and the backend chosen with ``--backend``, and prints them as Gherkin. Plain
``pytest`` is left alone (the project's own tests). One concern per module:

* :mod:`.options`: the command-line options;
* :mod:`.session`: configuration (target, step library, reporter) and docker images at session start;
* :mod:`.collection`: feature files as modules, checked before anything starts (malformed files,
  undefined steps, capabilities the target lacks);
* :mod:`.step_fixtures`: the step library registered with pytest-bdd;
* :mod:`.world`: the ``world`` fixture and the log tails of failed scenarios;
* :mod:`.tracing`: per-step statuses and the ``--step-trace`` file;
* :mod:`.reporter`: the Gherkin terminal output;
* :mod:`.reports`: JUnit and Cucumber JSON in the feature's language, also after an interrupted run.
"""

from harness.pytest_plugin.collection import pytest_collect_file, pytest_collection_modifyitems
from harness.pytest_plugin.options import pytest_addoption
from harness.pytest_plugin.session import pytest_configure, pytest_report_header, pytest_sessionstart
from harness.pytest_plugin.tracing import (
    pytest_bdd_after_scenario,
    pytest_bdd_after_step,
    pytest_bdd_before_scenario,
    pytest_bdd_before_step_call,
    pytest_bdd_step_error,
    pytest_bdd_step_func_lookup_error,
)
from harness.pytest_plugin.world import pytest_runtest_makereport, world

__all__ = [
    "pytest_addoption",
    "pytest_bdd_after_scenario",
    "pytest_bdd_after_step",
    "pytest_bdd_before_scenario",
    "pytest_bdd_before_step_call",
    "pytest_bdd_step_error",
    "pytest_bdd_step_func_lookup_error",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_sessionstart",
    "world",
]
