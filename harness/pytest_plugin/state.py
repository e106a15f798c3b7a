"""What the plugin keeps for one pytest run (in ``config.stash``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import trace


@dataclass
class ScenarioRecord:
    steps: list[tuple[str, str, int]]  # keyword, text, line
    status: dict[int, str] = field(default_factory=dict)  # line -> passed | failed | undefined | skipped
    durations: dict[int, float] = field(default_factory=dict)  # line -> seconds
    functions: dict[int, str] = field(default_factory=dict)  # line -> the step definition's file:line
    started: float = field(default_factory=time.perf_counter)


@dataclass
class RunState:
    features_dir: Path
    target: type  # the Target class every scenario's World gets an instance of
    trace: trace.TraceWriter | None = None
    scenarios: dict[str, ScenarioRecord] = field(default_factory=dict)  # nodeid -> record
    active: dict[str, tuple[Any, trace.StepTrace]] = field(default_factory=dict)  # nodeid -> open step
    infos: dict[str, Any] = field(default_factory=dict)  # nodeid -> reports.ScenarioInfo


STATE = pytest.StashKey[RunState]()


def run_state(config: pytest.Config) -> RunState | None:
    return config.stash.get(STATE, None)


def rel(config: pytest.Config, path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(config.rootpath))
    except ValueError:
        return path
