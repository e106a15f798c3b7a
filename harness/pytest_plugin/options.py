"""Command-line options of ``pytest --gherkin``."""

from __future__ import annotations

import pytest

from harness.backends.select import BACKENDS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("servingbdd", "servingbdd acceptance features")
    group.addoption(
        "--gherkin",
        action="store_true",
        default=False,
        help="run the feature scenarios (from --features) on a real cluster and print them as Gherkin",
    )
    group.addoption(
        "--target",
        default="auto",
        metavar="NAME",
        help="the serving system to test: reference (default), mlserver, or one a package registers "
        "(servingbdd.targets entry points); auto = [tool.servingbdd.target] of pyproject.toml if any",
    )
    group.addoption(
        "--target-profile",
        default=None,
        metavar="FILE",
        help="TOML profile of a deployment the harness did not start (URL, credentials from the "
        "environment, models, capabilities); see docs/targets.md",
    )
    group.addoption(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="where the target's services run (default: auto = docker when an engine answers, else local)",
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
    # load profiles: read by the load steps through harness.load.settings
    group.addoption(
        "--load-workers",
        type=int,
        default=0,
        metavar="N",
        help="run each load as a Locust master and N worker processes (default 0: one process)",
    )
    group.addoption(
        "--baseline",
        default=None,
        metavar="FILE",
        help="latency baselines (JSON): 'latency has not regressed' compares each scenario with its entry",
    )
    group.addoption(
        "--save-baseline",
        action="store_true",
        default=False,
        help="add each scenario's run to --baseline FILE instead of comparing with it",
    )
    group.addoption(
        "--load-profiles",
        default=None,
        metavar="FILE",
        help="the load profiles and SLO tables (TOML; default: fixtures/load_profiles.toml)",
    )


def gherkin_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("gherkin", default=False))
