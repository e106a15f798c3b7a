"""Steps for routing policies: A/B splits and promotion, canary rollouts judged by the gateway, shadow
traffic, and the audit trail of every change. Shares are judged from the answers clients received
(which version each one names, and what it computed), never from what the gateway says it configured."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
import parse

from harness.drivers.metrics import requests_by
from harness.drivers.routed_traffic import Routed, by_version, summary
from harness.drivers.worker import WorkerProbe
from harness.slo import percentile
from harness.steps_registry import given, parse_type, then, when
from harness.waiting import poll
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._routing import (
    answers,
    artifacts_of,
    audit_entries,
    binomial_interval,
    canary_done,
    check_outputs,
    gateway_time,
    state,
    traffic,
)

#: Answers within this long of a stage change are not attributed to either stage (requests in flight).
STAGE_EDGE_S = 0.1
MIN_STAGE_ANSWERS = 20  # fewer answers say little about a share
#: The controller's verdicts that end a stage at its first breaching window, before its hold time is up.
CUT_SHORT = ("reduce", "breach", "alert")


@parse_type("Percents")
@parse.with_pattern(r"\d+(?:\.\d+)?(?:(?:, | and )\d+(?:\.\d+)?)*")
def parse_percents(text: str) -> list[float]:
    """``5, 10, 25, 50 and 100`` -> [5.0, 10.0, 25.0, 50.0, 100.0]."""
    return [float(p) for p in text.replace(" and ", ",").split(",") if p.strip()]


def _set_policy(world: World, model: str, policy: dict[str, Any], reason: str) -> None:
    """Set the policy; marks ``policy_requested`` (before: no request before it can be routed by it) and
    ``policy_set`` (after: every request after it is)."""
    state(world).marks["policy_requested"] = time.time()
    answer = world.gateway.set_policy(model, policy, reason=reason)
    assert answer.ok, (
        f"expected the gateway to accept the {policy['kind']} policy, it answered {answer.status}: "
        f"{answer.error}"
    )
    state(world).marks["policy_set"] = time.time()


# -- A/B -------------------------------------------------------------------------------------------------
@when(
    '{model:w} routes {a:d} % of its traffic to version "{va}" and {b:d} % to version "{vb}"',
    example='When demo routes 90 % of its traffic to version "1" and 10 % to version "2"',
    needs=("workers", "admin"),
)
def weighted_split(world: World, model: str, a: int, va: str, b: int, vb: str) -> None:
    """Set a weighted split (A/B test) through the admin API; both versions are loaded on every worker."""
    _set_policy(world, model, {"kind": "weighted", "weights": {va: a, vb: b}}, f"A/B test {va} vs {vb}")
    state(world).values["weights"] = {va: a / (a + b), vb: b / (a + b)}


@then(
    "the share of answers from each version lies within the 99 % binomial interval of its weight",
    example="Then the share of answers from each version lies within the 99 % binomial interval "
    "of its weight",
    needs=("workers", "admin"),
)
def shares_within_interval(world: World) -> None:
    """Over the answers since the split was set (at least 1,000), each version's count lies in the central
    99 % interval of Binomial(n, weight); every answer names one of the split's versions."""
    weights: dict[str, float] = state(world).values.get("weights", {})
    assert weights, "no split was set in this scenario"
    picked = [a for a in answers(world, start=state(world).marks["policy_set"]) if a.ok]
    n = len(picked)
    assert n >= 1000, f"expected at least 1,000 answers to judge the split, got {n}"
    counts = Counter(a.version for a in picked)
    strangers = set(counts) - set(weights)
    assert not strangers, f"answers came from versions outside the split: {dict(counts)}"
    lines, outside = [], []
    for version, weight in weights.items():
        low, high = binomial_interval(n, weight)
        k = counts.get(version, 0)
        lines.append(
            f"version {version}: {k}/{n} = {k / n:.2%} (weight {weight:.0%}, 99 % interval {low}..{high})"
        )
        if not low <= k <= high:
            outside.append(version)
    print("\n".join(lines))
    assert not outside, f"the share of version(s) {outside} is outside its interval: " + "; ".join(lines)


@then(
    "each version's latency and error figures are reported, and the gateway counted the same answers per "
    "version as the clients",
    example="Then each version's latency and error figures are reported, and the gateway counted the same "
    "answers per version as the clients",
    needs=("workers", "admin"),
)
def per_version_figures(world: World) -> None:
    """Prints requests, 5xx, p50 and p99 per version (client side); the gateway's own request counter per
    version and status equals what the clients received (every inference of the scenario is counted)."""
    model = traffic(world, _model(world)).model
    traffic(world, model).stop()
    picked = answers(world)
    for version, group in sorted(by_version(picked).items()):
        print(f"version {version}: {summary(group)}")
    seen = Counter((str(o.model_version), str(o.status)) for o in world.observations if "/infer" in o.target)
    counted = _gateway_counts(world, model)
    assert counted == seen, (
        f"the gateway's sut_requests_total per (version, status) {dict(counted)} differs from what the "
        f"clients received {dict(seen)}"
    )


def _gateway_counts(world: World, model: str) -> Counter[tuple[str, ...]]:
    """The gateway's own request counter of ``model`` by (version, status)."""
    counted = requests_by(world.target.metrics(), model, "version", "status")
    return +counted  # only the pairs it counted at least once


@when(
    'I promote {model:w} version "{version}" as the winner',
    example='When I promote demo version "2" as the winner',
    needs=("workers", "admin"),
)
def promote(world: World, model: str, version: str) -> None:
    """The winner becomes production and the split ends (admin API ``promote``)."""
    answer = world.gateway.promote(model, version, reason=f"version {version} won the A/B test")
    assert answer.ok, (
        f"expected the promotion of {model} version {version!r} to succeed: {answer.status} {answer.error}"
    )
    state(world).marks["promoted"] = time.time()


# -- canary ------------------------------------------------------------------------------------------------
@given(
    "canary limits of {errors:g} % errors and a p99 at most {over:d} ms above the stable version's and "
    "never above {p99:d} ms, judged on at least {count:d} canary requests per stage",
    example="Given canary limits of 1 % errors and a p99 at most 150 ms above the stable version's and never "
    "above 2000 ms, judged on at least 30 canary requests per stage",
    needs=("workers", "admin"),
)
def canary_limits(world: World, errors: float, over: int, p99: int, count: int) -> None:
    """The thresholds the next canary rollout is given (the gateway's controller judges against them): the
    canary's p99 is compared with the stable version's in the same window, so a busy machine weighs on both
    alike; the absolute bound also holds at 100 %, where the stable version gets no traffic."""
    world.gateway.live()  # the limits are for this cluster's controller: it must be there
    state(world).canary_limits = {
        "max_error_rate": errors / 100,
        "max_p99_ms": p99,
        "max_p99_over_stable_ms": over,
        "min_requests": count,
    }


@when(
    'I start a canary of {model:w} version "{version}" through stages {stages:Percents} % held {seconds:g} '
    "seconds each",
    example='When I start a canary of demo version "2" through stages 5, 10, 25, 50 and 100 % '
    "held 2 seconds each",
    needs=("workers", "admin"),
)
def start_canary(world: World, model: str, version: str, stages: list[float], seconds: float) -> None:
    """Hand the rollout to the gateway's canary controller: stable = production, canary = ``version``."""
    limits = state(world).canary_limits
    assert limits, "no canary limits given (missing 'Given canary limits of ...')"
    policy = {"kind": "canary", "canary": version, "stages": stages, "stage_seconds": seconds, **limits}
    if state(world).graduated:
        policy["graduated"] = state(world).graduated
    _set_policy(world, model, policy, f"canary of version {version}")
    state(world).values["canary"] = version


@then(
    "within {seconds:d} seconds the canary of {model:w} is promoted",
    example="Then within 90 seconds the canary of demo is promoted",
    needs=("workers", "admin"),
)
def canary_promoted(world: World, seconds: int, model: str) -> None:
    """The controller passed every stage and made the canary production (the gateway's catalog says so).
    Besides one pass per stage, only the judgments of a graduated rollback that recovered may appear."""
    policy = canary_done(world, model, "promoted", seconds)
    verdicts = [h["verdict"] for h in policy["history"]]
    passes = verdicts.count("pass")
    others = set(verdicts) - {"pass", "reduce", "alert", "recover"}
    assert passes == len(policy["stages"]) and not others, (
        f"expected every stage passed, judgments {verdicts}"
    )
    production = world.gateway.routing(model)["production"]
    assert production == policy["canary"], (
        f"expected production {policy['canary']!r}, the gateway says {production!r}"
    )


@then(
    "within {seconds:d} seconds the canary of {model:w} is rolled back at the {share:g} % stage",
    example="Then within 30 seconds the canary of demo is rolled back at the 5 % stage",
    needs=("workers", "admin"),
)
def canary_rolled_back(world: World, seconds: int, model: str, share: float) -> None:
    """The controller judged a breach at that stage and sent all traffic back to the stable version."""
    policy = canary_done(world, model, "rolled_back", seconds)
    last = policy["history"][-1] if policy.get("history") else {}
    assert last.get("verdict") == "breach" and last.get("share") == share, (
        f"expected a breach judged at the {share:g} % stage, the judgments were {policy.get('history')}"
    )


def _stage_windows(world: World) -> list[tuple[float, float, float, str]]:
    """(share, start, end, verdict) of each judged stage, in the gateway's wall-clock times."""
    policy = state(world).values.get("canary_policy")
    assert policy, "the canary has not finished in this scenario (missing a 'within ... the canary' step?)"
    start = state(world).marks["policy_set"]
    windows = []
    for judgment in policy["history"]:
        end = gateway_time(judgment["at"])
        windows.append((float(judgment["share"]), start, end, str(judgment.get("verdict"))))
        start = end
    return windows


@then(
    "at each stage the canary's share of answers lies within the 99 % binomial interval of the stage",
    example="Then at each stage the canary's share of answers lies within the 99 % binomial interval of the "
    "stage",
    needs=("workers", "admin"),
)
def stage_shares(world: World) -> None:
    """Per stage (between the controller's judgments), the count of answers naming the canary lies in the
    central 99 % interval of Binomial(n, stage share); answers within 0.1 s of a stage change are left out.
    A stage the controller cut short at its first breaching window may hold too few answers to judge a
    share: it is shown, not judged; every other stage needs at least 20, and at least one stage is judged."""
    canary = state(world).values["canary"]
    lines, outside, judged = [], [], 0
    for share, start, end, verdict in _stage_windows(world):
        picked = answers(world, start + STAGE_EDGE_S, end - STAGE_EDGE_S)
        n = len(picked)
        k = sum(1 for a in picked if a.version == canary)
        low, high = binomial_interval(n, share / 100)
        line = f"{share:g} %: {k}/{n} = {k / n if n else 0:.1%} (99 % interval {low}..{high})"
        if n < MIN_STAGE_ANSWERS and verdict in CUT_SHORT:
            lines.append(f"{line}, too few to judge: cut short by a {verdict}")
            continue
        lines.append(line)
        judged += 1
        if n < MIN_STAGE_ANSWERS or not low <= k <= high:
            outside.append(share)
    print("canary share per stage: " + "; ".join(lines))
    assert judged, f"no stage held {MIN_STAGE_ANSWERS} answers to judge its share: {lines}"
    assert not outside, (
        f"stages {outside} had a share outside the interval (or fewer than {MIN_STAGE_ANSWERS} answers):"
        f" {lines}"
    )


@then(
    "the time from the canary's first bad answer to the last request it answered is below {seconds:g} "
    "seconds",
    example="Then the time from the canary's first bad answer to the last request it answered is below 10 "
    "seconds",
    needs=("workers", "admin"),
)
def canary_exposure(world: World, seconds: float) -> None:
    """First bad answer: the canary's first 5xx, or its first answer slower than the stable version's
    median latency plus the allowed p99 excess; until the start of the last request the canary answered.
    Printed; must be below ``seconds``."""
    canary = state(world).values["canary"]
    limits = state(world).canary_limits
    mine = [a for a in answers(world) if a.version == canary]
    stable = [a.latency_s for a in answers(world) if a.version != canary and a.ok]
    assert stable, "no answer of the stable version to compare the canary's latency with"
    limit_s = percentile(stable, 0.5, min_samples=1) + limits["max_p99_over_stable_ms"] / 1000
    bad = [a for a in mine if a.status >= 500 or a.status == 0 or a.latency_s > limit_s]
    assert bad, (
        f"the canary {canary!r} never answered badly ({len(mine)} answers): nothing was wrong with it?"
    )
    last = max(a.started for a in mine)
    exposure = last - bad[0].ended
    history = (world.gateway.routing(_model(world)).get("policy") or {}).get("history") or [{}]
    judged = gateway_time(history[-1]["at"]) if history[-1].get("at") else float("nan")
    print(f"canary {canary}: first bad answer to last request it answered: {exposure:.2f} s "
          f"({len(bad)} bad of {len(mine)} canary answers); the controller judged "
          f"{judged - bad[0].ended:.2f} s after the first bad answer")  # fmt: skip
    assert exposure < seconds, f"the canary kept answering {exposure:.2f} s after its first bad answer"
    assert last <= judged + 0.5, (
        f"the canary answered a request {last - judged:.2f} s after the controller's verdict"
    )


@then(
    'after the canary of {model:w} ended only version "{version}" answered',
    example='Then after the canary of demo ended only version "1" answered',
    needs=("workers", "admin"),
)
def only_after_canary(world: World, model: str, version: str) -> None:
    """Answers started after the controller's last judgment (promotion or rollback): at least 20, all 200
    from ``version``. The traffic goes on until 40 such answers have arrived (at most 30 s): answers
    arriving just after the judgment were mostly sent before it."""
    start = _stage_windows(world)[-1][2] + STAGE_EDGE_S
    flow = traffic(world, model)
    poll(lambda: len(flow.answers(start)), lambda n: n >= 40, timeout=30, interval=0.05)
    flow.stop()
    after = answers(world, start=start)
    assert len(after) >= 20, f"expected at least 20 answers after the canary ended, got {len(after)}"
    wrong = [a for a in after if not a.ok or a.version != version]
    assert not wrong, (
        f"after the canary ended {len(wrong)} of {len(after)} answers were not 200 from {version!r}: "
        + ", ".join(f"{a.status} from {a.version!r}" for a in wrong[:5])
    )


# -- shadow ------------------------------------------------------------------------------------------------
@when(
    '{model:w} shadows its traffic to version "{version}" with a tolerance of {tolerance:g}',
    example='When demo shadows its traffic to version "2" with a tolerance of 0.000001',
    needs=("workers", "admin"),
)
def shadow(world: World, model: str, version: str, tolerance: float) -> None:
    """From now on a copy of each request goes to ``version`` (its answers compared, never returned). The
    workers' own count of requests served by ``version`` is read first, to count the copies later."""
    state(world).values["shadow"] = (version, tolerance, _served(world, model, version))
    _set_policy(world, model, {"kind": "shadow", "shadow": version, "tolerance": tolerance}, "shadow")


def _served(world: World, model: str, version: str) -> int:
    """Requests for ``version`` the running workers served (any status), from each worker's own /metrics."""
    total = 0
    for info in world.running_workers():
        counts = WorkerProbe(info.name, info.url).served_by_version(model)
        assert counts is not None, f"{info.name} did not answer its /metrics"
        total += counts.get(version, 0)
    return total


def _since_shadow(world: World) -> list[Routed]:
    """Answers of requests started since the shadow policy was requested (an upper bound of the copies)."""
    return answers(world, start=state(world).marks["policy_requested"])


@then(
    'every answer since the shadow began came from version "{version}"',
    example='Then every answer since the shadow began came from version "1"',
    needs=("workers", "admin"),
)
def only_primary(world: World, version: str) -> None:
    """Clients got only the primary's answers: every one 200 from ``version`` (outputs judged separately)."""
    traffic(world, _model(world)).stop()
    picked = _since_shadow(world)
    assert picked, "no request was sent since the shadow began"
    wrong = [a for a in picked if not a.ok or a.version != version]
    assert not wrong, f"{len(wrong)} of {len(picked)} answers were not 200 from {version!r}: " + ", ".join(
        f"{a.status} from {a.version!r}" for a in wrong[:5]
    )
    check_outputs(world, _model(world), picked)


@then(
    "the workers served the shadow a copy of at least {pct:g} % of the requests sent since it began",
    example="Then the workers served the shadow a copy of at least 99 % of the requests sent since it began",
    needs=("workers", "admin"),
)
def copies_served(world: World, pct: float) -> None:
    """Counted by the workers themselves (``sut_requests_total`` of the shadow version): at least ``pct`` %
    of the requests started after the gateway accepted the shadow policy, and no more than the requests
    started since it was asked to (while background traffic flows, those in between may or may not be
    copied). Printed as the copy ratio."""
    model = _model(world)
    traffic(world, model).stop()
    version, _, before = state(world).values["shadow"]
    upper = len(_since_shadow(world))
    lower = len(answers(world, start=state(world).marks["policy_set"]))
    copies = poll(
        lambda: (n := _served(world, model, version) - before) >= lower and n, bool, timeout=5.0, interval=0.2
    )
    copies = copies or _served(world, model, version) - before
    ratio = copies / lower if lower else 0.0
    print(f"shadow copies served by the workers: {copies} for {lower} requests sent under the shadow policy "
          f"({ratio:.2%}; {upper} since it was requested)")  # fmt: skip
    assert lower >= 100, f"expected at least 100 requests while shadowing, got {lower}"
    assert copies >= lower * pct / 100, f"the shadow served {copies} copies of {lower} requests ({ratio:.2%})"
    assert copies <= upper, (
        f"the shadow served {copies} copies but only {upper} requests were sent since it began"
    )


@then(
    "the agreement rate the gateway reports for {model:w}'s shadow is what the two versions' outputs imply",
    example="Then the agreement rate the gateway reports for demo's shadow is what the two versions' outputs "
    "imply",
    needs=("workers", "admin"),
)
def agreement_rate(world: World, model: str) -> None:
    """The gateway's agreement rate (within 2 points) equals the share of the inputs sent on which the two
    model files, run here, agree within the policy's tolerance; printed with the shadow's figures."""
    version, tolerance, _ = state(world).values["shadow"]
    picked = [a for a in _since_shadow(world) if a.ok]
    primary = picked[0].version
    files = artifacts_of(world, model)
    rows = np.concatenate([a.rows for a in picked])
    oracle = state(world).oracle
    diff = np.abs(oracle.expected(files[str(primary)], rows) - oracle.expected(files[version], rows)).max(
        axis=1
    )
    expected_rate = float(np.mean(diff <= tolerance))

    def settled() -> dict[str, Any] | None:
        report = world.gateway.shadow_report(model)
        return (
            report
            if report["compared"] + sum(report["shadow_errors"].values()) >= report["copies_sent"]
            else None
        )

    report = poll(settled, bool, timeout=5.0, interval=0.2) or world.gateway.shadow_report(model)
    print(f"shadow of {model}: {report}")
    print(f"agreement implied by the model files on the {len(picked)} inputs sent: {expected_rate:.2%}")
    rate = report.get("agreement_rate")
    assert rate is not None, f"the gateway reports no agreement rate: {report}"
    assert abs(rate - expected_rate) <= 0.02, (
        f"the gateway reports an agreement rate of {rate:.2%}, the outputs imply {expected_rate:.2%}"
    )


@then(
    "while shadowing the p99 latency stays below {ms:d} ms and the median at most {extra:d} ms above the "
    "median before",
    example="Then while shadowing the p99 latency stays below 500 ms and the median at most 50 ms above the "
    "median before",
    needs=("workers", "admin"),
)
def latency_unchanged(world: World, ms: int, extra: int) -> None:
    """Client-side latency of the answers while shadowing (100+ answers) against the answers before the
    shadow began: p99 within the SLO, median hardly moved (a tail is noisy on a busy machine; a shadow
    awaited on the client's path would move every request, hence the median). Both printed."""
    traffic(world, _model(world)).stop()
    before = [a.latency_s for a in answers(world, end=state(world).marks["policy_requested"]) if a.ok]
    during = [a.latency_s for a in answers(world, start=state(world).marks["policy_set"]) if a.ok]
    figures = {
        name: (
            percentile(values, 0.5, min_samples=100) * 1000,
            percentile(values, 0.99, min_samples=100) * 1000,
        )
        for name, values in (("before", before), ("during", during))
    }
    (m0, p0), (m1, p1) = figures["before"], figures["during"]
    print(f"latency before the shadow: median {m0:.1f} ms, p99 {p0:.1f} ms ({len(before)} answers); "
          f"while shadowing: median {m1:.1f} ms, p99 {p1:.1f} ms ({len(during)} answers)")  # fmt: skip
    assert figures["during"][1] < ms, f"p99 while shadowing {figures['during'][1]:.1f} ms, above {ms} ms"
    assert figures["during"][0] <= figures["before"][0] + extra, (
        f"the median rose from {figures['before'][0]:.1f} to {figures['during'][0]:.1f} ms while shadowing"
    )


# -- audit ---------------------------------------------------------------------------------------------------
@then(
    'the audit trail has a "{action}" entry for {model:w} by "{actor}" whose reason mentions "{text}"',
    example='Then the audit trail has a "canary_rollback" entry for demo by "canary-controller" whose reason '
    'mentions "error rate"',
    needs=("workers", "admin"),
)
def audited(world: World, action: str, model: str, actor: str, text: str) -> None:
    """An audit entry with that action and actor, a reason containing ``text``, and a time of this run."""
    entries = audit_entries(world, model, action)
    found = [
        e
        for e in entries
        if (e.get("details") or {}).get("actor") == actor
        and text in str((e.get("details") or {}).get("reason"))
    ]
    assert found, (
        f"expected a {action!r} audit entry for {model} by {actor!r} mentioning {text!r}; found {entries}"
    )
    entry = found[-1]
    at = gateway_time(entry["at"])
    assert abs(at - time.time()) < 3600, f"the audit entry's time {entry['at']} is not this scenario's"
    print(f"audit: {entry['at']} {action} by {actor}: {entry['details'].get('reason')}")


def _model(world: World) -> str:
    current = state(world).traffic
    assert current is not None, "no traffic was sent in this scenario"
    return current.model
