"""Runner models: each reads a suite the way its runner does (see the modules' docstrings).

Detection, in order: our registry (step code under ``steps/`` imports the registry module), a Rust
``cucumber`` suite (a ``Cargo.toml`` that depends on ``cucumber``), behave (a ``steps`` directory or an
``environment.py`` next to the features), pytest-bdd (test code that imports ``pytest_bdd``).
``--runner`` or ``[tool.stub_report] runner`` overrides it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import SuiteConfig
from ..model import RUNNERS
from ..rules import Rules
from .base import Suite


class NoSuite(LookupError):
    """No suite of a known runner where the report looked (exit 2 with the reason)."""


def detect(config: SuiteConfig) -> str | None:
    from . import behave, pytest_bdd, registry, rust

    root = config.root
    if config.steps or registry.detect(root, config.registry):
        return "registry"
    if rust.detect(root):
        return "rust-cucumber"
    if behave.detect(root):
        return "behave"
    if pytest_bdd.detect(root):
        return "pytest-bdd"
    return None


def loader(runner: str) -> Callable[[SuiteConfig, Rules], Suite]:
    from . import behave, pytest_bdd, registry, rust

    loaders: dict[str, Callable[[SuiteConfig, Rules], Suite]] = {
        "registry": registry.load,
        "behave": behave.load,
        "pytest-bdd": pytest_bdd.load,
        "rust-cucumber": rust.load,
    }
    assert set(loaders) == set(RUNNERS)
    return loaders[runner]


def load_suite(config: SuiteConfig, rules: Rules) -> Suite:
    runner = config.runner or detect(config)
    if runner is None:
        raise NoSuite(
            f"no suite of a known runner under {config.root} (looked for: steps/ importing "
            f"{config.registry}, a Cargo.toml depending on cucumber, features/steps/ or "
            "features/environment.py for behave, test code importing pytest_bdd); use --runner to choose"
        )
    if runner not in RUNNERS:
        raise NoSuite(f"unknown runner {runner!r} (known: {', '.join(RUNNERS)})")
    try:
        return loader(runner)(config, rules)
    except LookupError as exc:
        raise NoSuite(f"{runner}: {exc}") from exc


__all__ = ["NoSuite", "Suite", "detect", "load_suite"]
_ = Path
