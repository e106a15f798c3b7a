"""A suite's settings: command-line options over ``[tool.stub_report]`` in the suite's ``pyproject.toml``.

Everything is relative to the suite root (never the current directory), so the same suite gets the
same verdicts from wherever the report runs. Keys (all optional)::

    [tool.stub_report]
    runner = "registry"                  # registry | behave | pytest-bdd | rust-cucumber
    features = ["features"]              # feature directories or files
    steps = ["steps"]                    # step code (registry; behave finds its own)
    registry = "harness.steps_registry"  # the module (or StepRegistry) our registry decorators come from
    world = "harness.world:World"        # the World class whose attributes the harness owns
    harness = ["harness"]                # where the harness lives (its drivers write World attributes)

    [tool.stub_report.rules]             # additions to rules.toml, same tables
    names = { "myproduct.client" = "real.library" }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting the report cannot use (exit 2)."""


@dataclass
class SuiteConfig:
    root: Path
    runner: str | None = None
    features: list[Path] = field(default_factory=list)
    steps: list[Path] = field(default_factory=list)
    registry: str = "harness.steps_registry"
    world: str | None = None
    harness: list[Path] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the settings came from, for messages


def _paths(root: Path, value: Any, key: str) -> list[Path]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"[tool.stub_report] {key} must be a path or a list of paths")
    return [(root / v) for v in items]


def load(root: Path) -> SuiteConfig:
    config = SuiteConfig(root=root)
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return config
    try:
        with pyproject.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: {exc}") from exc
    section = data.get("tool", {}).get("stub_report")
    if not isinstance(section, dict):
        return config
    config.source = str(pyproject)
    runner = section.get("runner")
    if runner is not None and not isinstance(runner, str):
        raise ConfigError("[tool.stub_report] runner must be a string")
    config.runner = runner
    config.features = _paths(root, section.get("features"), "features")
    config.steps = _paths(root, section.get("steps"), "steps")
    config.harness = _paths(root, section.get("harness"), "harness")
    for key in ("registry", "world"):
        value = section.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"[tool.stub_report] {key} must be a string")
        if value is not None:
            setattr(config, key, value)
    rules = section.get("rules", {})
    if not isinstance(rules, dict):
        raise ConfigError("[tool.stub_report] rules must be a table")
    config.rules = rules
    return config
