"""The reference cluster a scenario describes, started once its setup steps are all known.

Setup steps (``Given a cluster ...``, its option table, add-ons such as ``And the cluster's links accept
network faults``) each add to one :class:`ClusterPlan` kept on the World. Nothing starts until the first
step that acts (or the end of a scenario made only of setup steps): then the plan becomes one
:class:`ClusterSpec` and the cluster starts with every option at once, whatever order the steps came in.

A step that needs a part of the setup the scenario lacks (:func:`require_setup`) fails with a sentence
naming the step to add, in the feature's words, never with a Python error from deep in a backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness import trace
from harness.backends.base import BackendError
from harness.steps_registry import SETUP_ADVICE, before_action
from harness.targets.base import TargetError
from harness.targets.reference import ClusterSpec, TrainerSpec
from harness.world import World

MB = 1_000_000
#: Rows per labelled request of the drift traffic; the trainer's windows are multiples of it.
DRIFT_BATCH_ROWS = 50
CLUSTER_STEP = 'Given a cluster with 2 workers serving demo version "1"'


@dataclass(frozen=True)
class SetupOption:
    """One option of the cluster table, and the add-on step that says the same."""

    name: str  # as written in the table's first column
    values: str  # the words the second column accepts, for the docs and the errors
    add_on: str  # the add-on step that sets it, as a QA writes it
    parse: Callable[[str], dict[str, Any]]  # table value -> plan fields (raises ValueError)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(?:every )?(\d+(?:\.\d+)?) seconds?", text.strip())
    if match is None:
        raise ValueError("a duration such as '0.3 seconds' or '1 second'")
    return float(match.group(1))


def _workers(text: str) -> dict[str, Any]:
    match = re.fullmatch(r"(\d+)(?: workers?)?", text.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError("a count of at least 1, such as '3' or '3 workers'")
    return {"workers": int(match.group(1))}


def _budget(text: str) -> dict[str, Any]:
    if text.strip() == "none":
        return {"memory_budget": 0}
    match = re.fullmatch(r"(\d+) MB", text.strip())
    if match is None:
        raise ValueError("a size in decimal megabytes such as '100 MB', or 'none'")
    return {"memory_budget": int(match.group(1)) * MB}


def _links(text: str) -> dict[str, Any]:
    words = {"accept network faults": True, "plain": False}
    if text.strip() not in words:
        raise ValueError("'accept network faults' or 'plain'")
    return {"fault_links": words[text.strip()]}


def _trainer(text: str) -> dict[str, Any]:
    if text.strip() == "none":
        return {"trainer": None}
    match = re.fullmatch(r"(?:a drift trainer )?checking every (\d+(?:\.\d+)?) seconds?", text.strip())
    if match is None:
        raise ValueError("'checking every 0.5 seconds' or 'none'")
    return {"trainer": drift_trainer(float(match.group(1)))}


def _catalog(text: str) -> dict[str, Any]:
    words = {"sqlite": False, "postgresql": True}
    if text.strip().lower() not in words:
        raise ValueError("'SQLite' (a file, the default) or 'PostgreSQL' (a harness-run server)")
    return {"postgres": words[text.strip().lower()]}


OPTIONS: dict[str, SetupOption] = {
    o.name: o
    for o in (
        SetupOption("workers", "a count: `3` or `3 workers` (default 1)", "", _workers),
        SetupOption(
            "heartbeat",
            "`0.3 seconds` (default 1 second): how often workers report; 3 missed = expired",
            "And the cluster has a heartbeat every 0.3 seconds",
            lambda t: {"heartbeat_interval": _seconds(t)},
        ),
        SetupOption(
            "upstream deadline",
            "`1 second` (default 5 seconds): the gateway's deadline for every call to a worker",
            "And the cluster has an upstream deadline of 1 second",
            lambda t: {"upstream_timeout": _seconds(t)},
        ),
        SetupOption(
            "memory budget",
            "`100 MB` or `none` (default none): each worker refuses (507) loads past it",
            "And the cluster's workers have a memory budget of 100 MB",
            _budget,
        ),
        SetupOption(
            "links",
            "`accept network faults` or `plain` (default plain): in-path proxies on the gateway-worker links",
            "And the cluster's links accept network faults",
            _links,
        ),
        SetupOption(
            "trainer",
            "`checking every 0.5 seconds` or `none` (default none): the drift monitor and retrainer",
            "And the cluster has a drift trainer checking every 0.5 seconds",
            _trainer,
        ),
        SetupOption(
            "catalog",
            "`SQLite` (default) or `PostgreSQL`: where the gateway keeps its catalog",
            "And the cluster keeps its catalog in a PostgreSQL server",
            _catalog,
        ),
    )
}


#: The target capability each plan field needs when it is on (the table's options are only known at run
#: time, so a target without it skips the scenario then).
OPTION_NEEDS = {
    "trainer": "trainer",
    "postgres": "catalog-db",
    "memory_budget": "memory",
    "fault_links": "links",
}


def drift_trainer(interval: float) -> TrainerSpec:
    """The trainer the drift features use: windows of 600 rows, judged from 300, default thresholds."""
    return TrainerSpec(interval=interval, window=12 * DRIFT_BATCH_ROWS, min_window=6 * DRIFT_BATCH_ROWS)


@dataclass
class ClusterPlan:
    """What the scenario's setup steps asked for so far."""

    model: str | None = None
    version: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # ClusterSpec fields and "postgres"
    set_by: dict[str, str] = field(default_factory=dict)  # field -> the step that set it
    steps: list[str] = field(default_factory=list)  # every setup step, "text (feature:line)"
    started_for: str | None = None  # the step before which the cluster started

    def describe(self) -> str:
        return "; ".join(self.steps) or "no step"

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


PLAN = pytest.StashKey[ClusterPlan]()


def _here() -> str:
    record = trace.current()
    return f"'{record.text}' ({record.location})" if record is not None else "a step"


def plan(world: World) -> ClusterPlan:
    """The scenario's plan, created on first use."""
    world.require("workers")
    existing = world.stash.get(PLAN, None)
    if existing is None:
        existing = world.stash[PLAN] = ClusterPlan()
    return existing


def add_to_plan(world: World, model: str | None = None, version: str | None = None, **fields: Any) -> None:
    """Record what the running setup step asks for; refuse it once the cluster has started, and refuse
    an option that an earlier step set to something else."""
    the_plan = plan(world)
    here = _here()
    if the_plan.started_for is not None:
        raise AssertionError(
            f"{here} describes the cluster, but the cluster already started before "
            f"{the_plan.started_for}: move this step above that one (setup steps come first)"
        )
    if model is not None:
        if the_plan.model is not None:
            raise AssertionError(
                f"{here} starts a second cluster; this scenario already has one ({the_plan.describe()}): "
                "add options to it with its table or the add-on steps instead"
            )
        the_plan.model, the_plan.version = model, version
    for name, value in fields.items():
        if name in the_plan.fields and the_plan.fields[name] != value:
            raise AssertionError(
                f"{here} sets {name.replace('_', ' ')} to {value!r}, but {the_plan.set_by[name]} "
                f"already set it to {the_plan.fields[name]!r}"
            )
        the_plan.fields[name] = value
        the_plan.set_by[name] = here
    the_plan.steps.append(here)
    trace.defer_current()  # credited with what starting the cluster touches


def table_options(datatable: list[list[str]]) -> dict[str, Any]:
    """The option table (``| heartbeat | 0.3 seconds |`` rows, an optional ``| option | value |`` header)
    as plan fields; an unknown option or a value it does not accept is an error naming the row."""
    rows = [[cell.strip() for cell in row] for row in datatable]
    if rows and [c.lower() for c in rows[0]] == ["option", "value"]:
        rows = rows[1:]
    fields: dict[str, Any] = {}
    for row in rows:
        if len(row) != 2:
            raise AssertionError(f"each row of the cluster table has 2 cells (option, value); got {row}")
        name, value = row[0].lower(), row[1]
        option = OPTIONS.get(name)
        if option is None:
            raise AssertionError(f"unknown cluster option {row[0]!r}; the options are: {', '.join(OPTIONS)}")
        try:
            fields.update(option.parse(value))
        except ValueError as exc:
            raise AssertionError(f"cluster option {row[0]!r}: {value!r} is not {exc}") from None
    return fields


# -- starting the cluster --------------------------------------------------------------------------
@before_action
def start_planned_cluster(world: World) -> None:
    """Before the first step that acts: start the cluster the setup steps described (once)."""
    the_plan = world.stash.get(PLAN, None)
    if the_plan is None or the_plan.started_for is not None:
        return
    record = trace.current()
    the_plan.started_for = _here() if record is not None else "the end of the scenario"
    with trace.applying():
        _start(world, the_plan)


def _start(world: World, the_plan: ClusterPlan) -> None:
    if the_plan.model is None or the_plan.version is None:
        raise AssertionError(
            f"cluster options were given ({the_plan.describe()}) but no step says which cluster to start: "
            f"add a step like '{CLUSTER_STEP}'"
        )
    model, version = the_plan.model, the_plan.version
    artifact = world.artifacts.get((model, version))
    if artifact is None:
        raise AssertionError(
            f"no artifact for {model} version {version!r}: add a step like "
            f"'Given the {model} model with versions \"{version}\"' before the cluster starts"
        )
    fields = dict(the_plan.fields)
    postgres = fields.pop("postgres", False)
    trainer = fields.get("trainer")
    if trainer is not None and not (artifact.path.parent / "baseline.npy").is_file():
        raise AssertionError(
            f"a drift trainer needs {model} version {version!r}'s training baseline beside its artifact; "
            f"there is none in {artifact.path.parent}"
        )
    try:
        if postgres:
            fields["db"] = world.start_database()
        spec = ClusterSpec(
            artifact_root=world.reference.artifact_root,
            preload=[(model, version, artifact.artifact_uri)],
            **fields,
        )
        world.start_cluster(spec)
    except (BackendError, TargetError) as exc:
        raise AssertionError(f"the cluster described by {the_plan.describe()} did not start: {exc}") from exc
    if fields.get("workers", 1):  # with none, nothing serves yet: a step adds them (providers' pools)
        ready = world.v2.ready()
        assert ready.ok, (
            f"expected the gateway to be ready once the cluster started, it answered {ready.status}: "
            f"{ready.error}"
        )
    if trainer is not None:
        assert world.trainer.live(), f"expected the trainer to be live at {world.trainer.base_url}"


# -- what a step may require -------------------------------------------------------------------------
_REQUIREMENTS = {
    "links": ("fault_links", "a cluster whose links accept network faults", "links"),
    "trainer": ("trainer", "a cluster with a drift trainer", "trainer"),
    "postgres": ("postgres", "a cluster that keeps its catalog in a PostgreSQL server", "catalog"),
}


def _table_value(option: str) -> str:
    return {"links": "accept network faults", "trainer": "checking every 0.5 seconds"}.get(
        option, "PostgreSQL"
    )


def _advice(what: str) -> str:
    _, words, option = _REQUIREMENTS[what]
    return (
        f"{words}: add the step '{OPTIONS[option].add_on}' after the cluster step, or the row "
        f"'| {option} | {_table_value(option)} |' to its table"
    )


SETUP_ADVICE.update({what: _advice(what) for what in _REQUIREMENTS})


def provided_by_table(values: dict[str, Any], table: list[list[str]] | None) -> list[str]:
    """The setup options a cluster table gives (checked before anything starts; a wrong row is refused
    then, with the same message as at run time)."""
    fields = table_options(table or [])
    return [what for what, (name, _, _) in _REQUIREMENTS.items() if fields.get(name)]


def require_setup(world: World, what: str = "cluster") -> None:
    """Fail, in Gherkin terms, when the scenario's setup lacks ``what`` ("cluster", "links", "trainer",
    "postgres"), naming the step that would give it."""
    here = _here()
    the_plan = world.stash.get(PLAN, None)
    if the_plan is None or the_plan.model is None:
        raise AssertionError(f"{here} needs a cluster: add a step like '{CLUSTER_STEP}' before it")
    if what == "cluster":
        return
    if not the_plan.get(_REQUIREMENTS[what][0]):
        raise AssertionError(f"{here} needs {_advice(what)} (this scenario's cluster: {the_plan.describe()})")
