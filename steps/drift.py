"""Steps for drift detection and automatic retraining: labelled traffic through the gateway,
the trainer's verdicts and runs, the retrained artifact, the catalog and the answers that follow.

The traffic is deterministic (``fixtures.data``, fixed seeds, 50-row requests): the trainer can only
ever see whole requests, so every window it may judge is known in advance
(``tests/sut/test_drift_scenarios.py`` checks them all against the demo baseline).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import parse
import pytest

from fixtures.data import baseline, drifted
from harness.steps_registry import given, parse_type, then, when
from harness.targets.reference import TrainerSpec
from harness.targets.reference.traffic import TrafficDriver, TrafficReport
from harness.waiting import poll, until
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps.cluster import start_cluster
from steps.cluster_plan import DRIFT_BATCH_ROWS, drift_trainer, require_setup

#: Rows per infer request; the trainer's window and minimum window are multiples of it.
BATCH_ROWS = DRIFT_BATCH_ROWS
#: Seeds of the traffic the scenarios send (see tests/sut/test_drift_scenarios.py).
BASELINE_SEED = 11
DRIFT_SEED = 1
#: How long the trainer may take to judge, retrain, export, register and roll out.
RUN_TIMEOUT_S = 90.0
FIGURES_FILE = Path(__file__).resolve().parent.parent / "reports" / "drift_retrain.jsonl"

LABEL_SOURCES = {
    "a changed relationship": "changed",  # the world changed: a retrained model must do better
    "the serving model's own answers": "served",  # the serving model is exactly right: nothing can beat it
}


@parse_type("LabelSource")
@parse.with_pattern("|".join(LABEL_SOURCES))
def parse_label_source(text: str) -> str:
    """``a changed relationship`` / ``the serving model's own answers`` -> the traffic driver's rule."""
    return LABEL_SOURCES[text]


@dataclass
class DriftState:
    traffic: TrafficDriver
    rows_sent: int = 0
    sent_until: float = 0.0  # wall clock when the last one-shot batch was answered
    first_drifted_at: float | None = None
    model: str | None = None  # the model the drifted traffic goes to
    figures: dict[str, Any] = field(default_factory=dict)


_STATES_KEY = pytest.StashKey[DriftState]()


def _state(world: World) -> DriftState:
    state = world.stash.get(_STATES_KEY, None)
    if state is None:
        traffic = TrafficDriver(world.target.inference_url, world.observations)
        world.defer("stop the labelled traffic", traffic.close)
        state = world.stash[_STATES_KEY] = DriftState(traffic)
    return state


def _trainer_spec(world: World) -> TrainerSpec:
    require_setup(world, "trainer")
    assert world.spec is not None and world.spec.trainer is not None
    return world.spec.trainer


# -- Given --------------------------------------------------------------------------------------------
@given(
    'a cluster with {workers:Workers} serving {model:w} version "{version}" '
    "and a drift trainer checking every {seconds:g} seconds",
    example='Given a cluster with 1 worker serving demo version "1" '
    "and a drift trainer checking every 0.5 seconds",
    needs=("trainer", "admin"),
    setup=True,
    provides=("trainer",),
)
def cluster_with_trainer(world: World, workers: int, model: str, version: str, seconds: float) -> None:
    """The cluster plus the trainer (windows of 600 rows, judged from 300; default thresholds); the same as
    the cluster step with the add-on "the cluster has a drift trainer checking every ... seconds"."""
    start_cluster(world, workers, model, version, trainer=drift_trainer(seconds))


# -- When ---------------------------------------------------------------------------------------------
def _send(world: World, model: str, inputs: np.ndarray, labels: str) -> TrafficReport:
    state = _state(world)
    report = state.traffic.send(model, inputs, labels=labels, batch=BATCH_ROWS)
    assert not report.failures, f"expected every labelled request to be served: {report.failures[:5]}"
    state.rows_sent += len(inputs)
    state.sent_until = time.time()
    return report


@when(
    "{rows:d} rows of baseline traffic are sent to {model:w} with labels from {labels:LabelSource}",
    example="When 600 rows of baseline traffic are sent to demo with labels from a changed relationship",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def send_baseline(world: World, rows: int, model: str, labels: str) -> None:
    """Infer requests (50 rows each) drawn like the training data, each followed by its labels."""
    _send(world, model, baseline(rows, seed=BASELINE_SEED), labels)


@when(
    "{rows:d} rows with feature {feature:d} shifted by {shift:g} standard deviations are sent to "
    "{model:w} with labels from {labels:LabelSource}",
    example="When 600 rows with feature 2 shifted by 0.02 standard deviations are sent to demo "
    "with labels from a changed relationship",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def send_drifted(world: World, rows: int, feature: int, shift: float, model: str, labels: str) -> None:
    """Drifted traffic sent once: ``feature``'s mean moved by ``shift`` standard deviations."""
    state = _state(world)
    state.first_drifted_at = time.time()
    _send(world, model, drifted(rows, distribution_shift=shift, feature=feature, seed=DRIFT_SEED), labels)


@when(
    "users keep sending rows with feature {feature:d} shifted by {shift:g} standard deviations to "
    "{model:w} with labels from {labels:LabelSource}",
    example="When users keep sending rows with feature 2 shifted by 0.3 standard deviations to demo "
    "with labels from a changed relationship",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def keep_sending_drifted(world: World, feature: int, shift: float, model: str, labels: str) -> None:
    """Continuous drifted traffic (one window of rows, replayed in order) until a Then step stops it."""
    state = _state(world)
    rows = _trainer_spec(world).window
    data = drifted(rows, distribution_shift=shift, feature=feature, seed=DRIFT_SEED)
    state.first_drifted_at = time.time()
    state.model = model
    state.traffic.start(model, data, labels=labels, batch=BATCH_ROWS)
    until(
        lambda: state.traffic.report.requests,
        timeout=30.0,
        what="the drifted traffic's first answer",
        seen=lambda n: f"{n} requests completed",
    )


# -- Then: the trainer's verdicts and runs ---------------------------------------------------------------
def _feature_table(features: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"feature {f['feature']}: PSI {f['psi']:.3f}, KS {f['ks_statistic']:.3f} (p={f['ks_p_value']:.2g})"
        + (" DRIFT" if f["drifted"] else "")
        for f in features
    )


@then(
    "the trainer reports no drift for {model:w}",
    example="Then the trainer reports no drift for demo",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def reports_no_drift(world: World, model: str) -> None:
    """Wait for a verdict judged after the last row was sent, over all of it; it must be ``no_drift``."""
    state = _state(world)
    spec = _trainer_spec(world)
    expected_rows = min(state.rows_sent, spec.window)

    def fresh(verdict: dict | None) -> bool:
        return (
            bool(verdict)
            and verdict["at"] > state.sent_until
            and verdict.get("window_size", 0) >= expected_rows
        )

    verdict = until(
        lambda: world.trainer.drift(model),
        fresh,
        timeout=RUN_TIMEOUT_S,
        interval=0.2,
        what=f"a drift verdict on {model} over {expected_rows} rows judged after the last row was sent",
        seen=lambda v: f"verdict {v}" if v else "no verdict",
    )
    state.figures["verdict"] = verdict
    assert verdict["decision"] == "no_drift", (
        f"expected no drift for {model}, the trainer decided {verdict['decision']!r} "
        f"({verdict.get('reason') or _feature_table(verdict.get('features', []))})"
    )
    table = _feature_table(verdict["features"])
    print(f"trainer verdict for {model}: no drift over {verdict['window_size']} rows; {table}")


@then(
    "the trainer reports drift on feature {feature:d} of {model:w} only",
    example="Then the trainer reports drift on feature 2 of demo only",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def reports_drift_on(world: World, feature: int, model: str) -> None:
    """The statistics that triggered the retraining run (else the latest verdict) flag only ``feature``."""
    state = _state(world)

    def seen() -> dict | None:
        runs = world.trainer.runs(model)
        if runs:
            return {"source": "run", **runs[0]["trigger"]}
        verdict = world.trainer.drift(model)
        return {"source": "verdict", **verdict} if verdict and verdict["decision"] == "drift" else None

    verdict = until(seen, timeout=RUN_TIMEOUT_S, interval=0.2, what=f"the trainer to report drift on {model}")
    state.figures["drift"] = verdict
    assert verdict["drifted_features"] == [feature], (
        f"expected drift on feature {feature} only, the trainer flagged {verdict['drifted_features']}: "
        f"{_feature_table(verdict['features'])}"
    )
    print(f"trainer drift statistics ({verdict['window_size']} rows): {_feature_table(verdict['features'])}")


@then(
    "no retraining run of {model:w} has started",
    example="Then no retraining run of demo has started",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def no_run(world: World, model: str) -> None:
    """Two more drift checks go by; the trainer lists no run for the model."""
    time.sleep(2 * _trainer_spec(world).interval)
    runs = world.trainer.runs(model)
    assert runs == [], f"expected no retraining run of {model}, the trainer lists {runs}"


def _finished_run(world: World, model: str) -> dict[str, Any]:
    def finished(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in runs if r["status"] != "running"]

    runs = until(
        lambda: world.trainer.runs(model),
        lambda runs: bool(finished(runs)),
        timeout=RUN_TIMEOUT_S,
        interval=0.2,
        what=f"a retraining run of {model} to finish",
        seen=lambda runs: f"runs {[(r.get('id'), r['status']) for r in runs]}",
    )
    return finished(runs)[0]


@then(
    "a retraining run of {model:w} completes without a manual step",
    example="Then a retraining run of demo completes without a manual step",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def run_completes(world: World, model: str) -> None:
    """The trainer started the run on its own (trigger: drift) and finished it as ``completed``."""
    run = _finished_run(world, model)
    _state(world).figures["run"] = run
    assert run["trigger"]["kind"] == "drift", f"expected a run triggered by drift, got {run['trigger']}"
    assert run["status"] == "completed", (
        f"expected the retraining run to complete, it ended {run['status']!r}: {run['reason']}"
    )


@then(
    'the retraining run of {model:w} is rejected with a reason saying "{text}"',
    example='Then the retraining run of demo is rejected with a reason saying "not below"',
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def run_rejected(world: World, model: str, text: str) -> None:
    """The run finished ``rejected`` (no new version registered), and its reason says why."""
    run = _finished_run(world, model)
    _state(world).figures["run"] = run
    assert run["status"] == "rejected", (
        f"expected a rejected run, it ended {run['status']!r} with new version {run['new_version']!r} "
        f"(held-out metrics {run['metrics']})"
    )
    assert text in run["reason"], f"expected the reason to say {text!r}, it says {run['reason']!r}"
    assert run["new_version"] is None, f"a rejected run registered version {run['new_version']!r}"
    print(f"run {run['id']} rejected: {run['reason']}")


@then(
    'a new artifact of {model:w} exists with a checksum different from version "{version}"',
    example='Then a new artifact of demo exists with a checksum different from version "1"',
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def new_artifact(world: World, model: str, version: str) -> None:
    """The completed run's artifact is on disk, its sha256 is what the run reports, and not the old one."""
    run = _state(world).figures.get("run") or _finished_run(world, model)
    assert run.get("artifact_uri"), f"the run names no artifact: {run}"
    path = world.reference.artifact_root / run["artifact_uri"]
    assert path.is_file(), f"expected the retrained artifact at {path}, there is none"
    sha = hashlib.sha256(world.read_artifact(run["artifact_uri"])).hexdigest()
    old = {v["version"]: v["sha256"] for v in world.gateway.versions(model)}
    assert sha == run["sha256"], f"artifact {path} has sha256 {sha}, the run reports {run['sha256']}"
    assert sha != old.get(version), f"the new artifact has the same checksum as version {version!r}: {sha}"
    assert (path.parent / "baseline.npy").is_file(), f"no training baseline beside {path}"


@then(
    'the catalog lists {model:w} version "{version}" with parent version "{parent}"',
    example='Then the catalog lists demo version "2" with parent version "1"',
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def catalog_parent(world: World, model: str, version: str, parent: str) -> None:
    """The gateway's catalog has the version, registered with ``parent`` as its parent."""
    versions = {v["version"]: v for v in world.gateway.versions(model)}
    assert version in versions, (
        f"expected {model} version {version!r} in the catalog, it lists {sorted(versions)}"
    )
    actual = versions[version].get("parent_version")
    assert actual == parent, (
        f"expected parent version {parent!r} of {model} v{version}, the catalog says {actual!r}"
    )


@then(
    'the labelled traffic is answered by version "{version}" within {seconds:g} seconds '
    "of the first drifted request",
    example='Then the labelled traffic is answered by version "2" within 60 seconds '
    "of the first drifted request",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def traffic_answered_by(world: World, version: str, seconds: float) -> None:
    """The running traffic gets an answer from ``version``, and so does a request of our own through the
    gateway; the time since the first drifted request is reported (and appended to
    ``reports/drift_retrain.jsonl``)."""
    state = _state(world)
    assert state.model is not None, (
        "no drifted traffic was started (missing a 'When users keep sending' step?)"
    )
    report = state.traffic.report
    poll(
        lambda: version in report.first_answer_at or not state.traffic.running,
        bool,
        timeout=seconds,
        interval=0.2,
    )
    assert version in report.first_answer_at, (
        f"the traffic got no answer from version {version!r} within {seconds:g} s"
        f"{'' if state.traffic.running else ' (it stopped)'}; it saw {sorted(report.first_answer_at)}"
    )
    elapsed = report.first_answer_at[version] - (state.first_drifted_at or report.first_sent_at or 0.0)
    assert elapsed <= seconds, (
        f"version {version!r} first answered {elapsed:.1f} s after the first drifted request"
    )
    own = world.gateway.infer(state.model)
    assert own.ok and own.model_version == version, (
        f"expected the gateway to answer {state.model} from version {version!r} now; it answered "
        f"{own.status} from version {own.model_version!r}: {own.error}"
    )
    state.figures["time_to_new_version_s"] = round(elapsed, 3)
    print(f"first drifted request -> first answer from version {version}: {elapsed:.2f} s")
    _save_figures(world, state)


@then(
    "while the retrained version was rolled out every labelled request was answered successfully",
    example="Then while the retrained version was rolled out "
    "every labelled request was answered successfully",
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def no_failures_during_rollout(world: World) -> None:
    """Stop the traffic; it spanned the rollout (answers from the old and the new version) with no failure."""
    state = _state(world)
    time.sleep(0.5)  # a little traffic after the first answer from the new version
    report = state.traffic.stop()
    assert len(report.first_answer_at) >= 2, (
        f"the traffic did not span the rollout: answers came only from {sorted(report.first_answer_at)}"
    )
    assert not report.failures, (
        f"{len(report.failures)} of {report.requests} labelled requests failed during the rollout: "
        f"{report.failures[:5]}"
    )
    print(f"traffic during the rollout: {report.requests} requests, {report.rows} rows, 0 failed")


def _save_figures(world: World, state: DriftState) -> None:
    drift = state.figures.get("drift") or {}
    record = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backend": world.backend_name,
        "time_to_new_version_s": state.figures.get("time_to_new_version_s"),
        "drift_window_size": drift.get("window_size"),
        "drift_features": drift.get("features"),
        "run": {k: state.figures.get("run", {}).get(k) for k in ("id", "status", "new_version", "metrics")},
    }
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES_FILE.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


@then(
    'the catalog lists only version "{version}" of {model:w}',
    example='Then the catalog lists only version "1" of demo',
    needs=("trainer", "admin"),
    requires=("trainer",),
)
def catalog_only(world: World, version: str, model: str) -> None:
    """No version was registered besides ``version`` (a rejected candidate never reaches the catalog)."""
    versions = sorted(v["version"] for v in world.gateway.versions(model))
    assert versions == [version], (
        f"expected only {model} version {version!r} in the catalog, it lists {versions}"
    )
