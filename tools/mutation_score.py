"""Mutation score of the acceptance features: run every mutant against the scenarios mapped to it.

A mutant (``tests/mutants/<name>/sitecustomize.py``) is a broken variant of the reference cluster, put
first on its services' PYTHONPATH through ``SERVINGBDD_SUT_PYTHONPATH`` (bind-mounted on docker). For
each :class:`Case` the mapped scenario runs in a subprocess (``pytest --gherkin``, real services); the
mutant is CAUGHT when the scenario fails at the step expected to see the defect, and the step's message
is printed: it must say what went wrong. A scenario that fails elsewhere (a Given that could not start
the cluster, a harness error) does not count as a catch.

    python tools/mutation_score.py [--fast] [--backend local|docker] [--only NAME ...] [--real]
                                   [--list] [--fail-under N]

``--fast`` runs the cases CI runs (one per mutant, each scenario under ~1 min on a busy machine);
``--real`` also runs each mapped scenario on the real cluster (it must pass). Exit status 1 when a case
does not catch its mutant at the expected step (or, with ``--fail-under``, when fewer mutants are
caught), or, with ``--real``, when the real cluster fails a mapped scenario.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "tests" / "mutants"
SHARED = MUTANTS / "_shared"  # what several mutants import (tests/mutants/_shared/mutant_patch.py)
TIMEOUT_S = 600


@dataclass(frozen=True)
class Case:
    """One mutant against one scenario: ``keyword`` is pytest's ``-k`` within ``feature``, ``step`` the
    beginning of the step text (with its keyword) that must fail."""

    mutant: str
    feature: str
    keyword: str
    step: str
    fast: bool = True


CASES: tuple[Case, ...] = (
    # -- what users fear ------------------------------------------------------------------------------
    Case("stale_model_after_swap", "hot_swap", "Swap and continuous",
         "And during the swap every request was answered successfully"),
    Case("ready_while_loading", "readiness_truth", "",
         "And whenever the server or demo reported ready, a request sent at once succeeded"),
    Case("ready_while_loading", "protocol_readiness", "unloaded",
         "And the server reports not ready while no model is loaded", fast=False),
    Case("ready_after_unload", "protocol_readiness", "unloaded", "Then demo reports not ready"),
    Case("ready_after_unload", "readiness_truth", "",
         "And whenever the server or demo reported ready, a request sent at once succeeded", fast=False),
    Case("leaks_old_versions", "memory_truth", "",
         "And the resident memory of every worker is within"),
    Case("keeps_old_versions", "memory_truth", "",
         "Then every worker holds only the production version of demo"),
    Case("slow_requests", "performance", "round and trip",
         "Then the median inference latency is less than"),
    Case("admin_any_token", "access", "", "Then every call was refused with 401 or 403"),
    Case("admin_token_prefix", "access", "", "Then every call was refused with 401 or 403"),
    Case("repository_unguarded", "access", "", "Then every call was refused with 401 or 403"),
    Case("early_swap_ack", "rollout_truth", "acknowledged",
         'And every worker computed with version "2" as soon as the swap was acknowledged'),
    Case("ignores_explicit_version", "protocol_inference", "Metadata",
         'And a request for demo version "2", which is not served'),
    Case("rollback_to_oldest", "rollout_truth", "three", 'And the production version of demo is "2"'),
    Case("budget_ignores_loaded", "oom", "already and holds",
         "Then the swap of demo is refused as over the memory budget"),
    # -- one per protocol feature ---------------------------------------------------------------------
    Case("crash_on_bad_shape", "protocol_inference", "shape and match",
         'Then it is refused with a 4xx whose error mentions "shape"'),
    Case("output_datatype_differs", "protocol_inference", "declared and outputs",
         "Then every answer has the outputs the model's metadata declares"),
    Case("unload_drops_in_flight", "protocol_repository", "flight",
         "Then the request in flight was answered successfully after the unload began"),
    Case("release_before_load", "protocol_repository", "loaded and users",
         "Then during the rollout every request was answered successfully", fast=False),
    # -- versioning and routing ------------------------------------------------------------------------
    Case("split_ignores_weights", "ab_testing", "split and honoured",
         "Then the share of answers from each version lies within the 99 % binomial interval of its weight"),
    Case("wrong_model_right_label", "ab_testing", "split and honoured",
         "And every answer's outputs are what the version that answered computes for its input"),
    Case("canary_never_rolls_back", "canary_rollout", "first and stage and fails",
         "Then within 60 seconds the canary of demo is rolled back at the 5 % stage"),
    # -- graduated rollback ------------------------------------------------------------------------------
    Case("graduated_skips_reduction", "graduated_rollback", "keeps and failing",
         "Then within 60 seconds the canary of demo is rolled back after its share was reduced to 5 %"),
    Case("graduated_ignores_persistence", "graduated_rollback", "keeps and failing",
         "Then within 60 seconds the canary of demo is rolled back after its share was reduced to 5 %"),
    Case("graduated_never_recovers", "graduated_rollback", "heals",
         "Then within 30 seconds the canary of demo recovers at the 25 % stage"),
    Case("shadow_leaks", "shadow_mode", "every and request and copy",
         'Then every answer since the shadow began came from version "1"'),
    Case("alert_wrong_version", "emergency_rollback", "alert and fails",
         'Then within 30 seconds the alert on demo fires and demo is rolled back to version "2"'),
    Case("unload_keeps_memory", "multi_version", "frees and memory",
         "Then the resident memory of every worker dropped by at least 80 % of what it reported"),
    Case("ignores_explicit_version", "multi_version", "themselves and concurrent",
         "Then every answer came from the version its request named", fast=False),
    Case("time_rule_hour_off", "time_based_routing", "office and sharp",
         'Then requests for demo are answered by version "2" until 17:00:00'),
    Case("drops_parent", "lineage", "grandchild", 'Then the parent of demo version "2" is "1"'),
    # -- credentials and the provider lock --------------------------------------------------------------
    Case("open_registration", "security", "traffic and admin",
         "And the stranger's worker received no inference request"),
    Case("any_join_token", "security", "register and wrong",
         "Then the gateway refuses it with"),  # an outline: "401 saying \"wrong join token\""
    Case("deregister_others", "security", "only and heartbeat",
         "Then the gateway refuses it with"),  # 403 saying "a worker may only deregister itself"
    Case("failover_on_client_errors", "provider_failover", "bad and input",
         'Then every one of them is answered 400 by provider "primary"'),
    Case("no_hold_time", "provider_failover", "flapping",
         "Then while it flapped the lock of demo failed over at most once per hold period"),
    Case("two_providers_answer", "provider_failover", "takes and 503",
         "And every answer during the load names the provider that held the lock of demo at that moment"),
    Case("lock_lost_on_restart", "provider_failover", "restarted",
         'Then provider "backup" still holds the lock of demo with its counters'),
    # -- the first release's mutants --------------------------------------------------------------------
    Case("release_before_load", "hot_swap", "Swap and continuous",
         "And during the swap every request was answered successfully"),
    Case("never_expire", "worker_churn", "killed", "Then within 5 seconds the gateway lists 1 worker"),
    Case("never_expire", "network_partition", "only and cut",
         "Then within 3 heartbeat intervals the gateway no longer lists worker-1", fast=False),
    Case("no_deadline", "network_partition", "slow and link",
         "Then 5 inference requests for demo are each answered 504 or 503 within 1.5 seconds"),
    Case("hang_on_dead_worker", "worker_restart", "",
         "Then the request is answered 502 or 503 within 2 seconds of the kill"),
    Case("reused_worker_id", "worker_restart", "", "When the killed worker is restarted", fast=False),
    Case("over_budget", "oom", "larger and than",
         "Then the swap of demo is refused as over the memory budget"),
    Case("racy_registration", "concurrency", "register and once",
         "Then within 30 seconds the gateway lists 51 workers", fast=False),
    Case("dies_on_corrupt_db", "database_corruption", "header",
         "Then within 5 seconds the gateway reports its catalog database corrupt"),
    Case("skip_holdout_check", "drift_retrain", "no and better",
         "And the retraining run of demo is rejected with a reason saying", fast=False),
)  # fmt: skip


@dataclass
class Outcome:
    case: Case
    mutant: bool  # run against the mutant (False: the real cluster)
    seconds: float
    selected: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (test, failing step, message)
    error: str = ""  # the run itself went wrong (nothing selected, a crash, a timeout)

    @property
    def caught_by(self) -> tuple[str, str] | None:
        """The failing step and its message, when it is the step the case expects."""
        for _, step, message in self.failures:
            if step.startswith(self.case.step):
                return step, message
        return None

    @property
    def passed(self) -> bool:
        return not self.error and self.selected > 0 and not self.failures


def run_case(case: Case, *, mutant: bool, backend: str = "local") -> Outcome:
    """Run the case's scenario(s) in a subprocess, with or without the mutant."""
    env = dict(os.environ)
    env.pop("SERVINGBDD_SUT_PYTHONPATH", None)
    if mutant:
        directory = MUTANTS / case.mutant
        if not (directory / "sitecustomize.py").is_file():
            return Outcome(case, mutant, 0.0, error=f"no mutant at {directory}")
        env["SERVINGBDD_SUT_PYTHONPATH"] = os.pathsep.join((str(directory), str(SHARED)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--gherkin",
                "--backend", backend, f"features/{case.feature}.feature", f"--junitxml={junit}",
                "--tb=no"]  # fmt: skip
        if case.keyword:
            argv += ["-k", case.keyword]
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Outcome(case, mutant, time.monotonic() - started, error=f"timed out after {TIMEOUT_S} s")
        outcome = Outcome(case, mutant, time.monotonic() - started)
        if not junit.is_file():
            outcome.error = f"pytest exited {proc.returncode} without a report: {proc.stdout[-500:]}"
            return outcome
        _read_junit(junit, outcome)
    if outcome.selected == 0 and not outcome.error:
        outcome.error = f"-k {case.keyword!r} selects no scenario of features/{case.feature}.feature"
    return outcome


def _read_junit(path: Path, outcome: Outcome) -> None:
    for testcase in ET.parse(path).iter("testcase"):
        skipped = testcase.find("skipped")
        if skipped is not None:
            outcome.error = f"skipped: {skipped.get('message', '')}"
            continue
        outcome.selected += 1
        for tag in ("failure", "error"):
            problem = testcase.find(tag)
            if problem is not None:
                message = problem.get("message") or ""
                if "more line" in message or not message:  # long: the element's text has it all
                    message = "\n".join(
                        line.removeprefix("E   ") for line in (problem.text or "").splitlines()
                    )
                step, message = _split(message)
                outcome.failures.append((testcase.get("name", "?"), step, message))


def _split(message: str) -> tuple[str, str]:
    """``AssertionError: <step>  (features/x.feature:12)\\n<what went wrong>`` -> (step, what)."""
    first, _, rest = message.strip().partition("\n")
    _, _, step = first.partition(": ")
    step = step.rsplit("  (features/", 1)[0].strip()
    lines = []
    for line in rest.splitlines():
        if line.strip().startswith("assert ") or line.startswith(("E ", "/")):  # pytest's own explanation
            break
        lines.append(line)
    return step, " ".join(" ".join(lines).split())


def describe(outcome: Outcome, width: int = 300) -> str:
    case = outcome.case
    where = f"{case.feature}{f' [-k {case.keyword}]' if case.keyword else ''}"
    if not outcome.mutant:
        verdict = "passes" if outcome.passed else f"FAILS: {outcome.error or outcome.failures[:1]}"
        return f"  real cluster, {where}: {verdict} ({outcome.seconds:.0f} s)"
    if outcome.error:
        return f"  ERROR {case.mutant} @ {where}: {outcome.error[:width]}"
    caught = outcome.caught_by
    if caught is not None:
        step, message = caught
        head = f"  caught  {case.mutant} @ {where} ({outcome.seconds:.0f} s)"
        return f"{head}\n    ✗ {step}\n      {message[:width]}"
    if outcome.failures:
        _, step, message = outcome.failures[0]
        return (
            f"  MISSED  {case.mutant} @ {where}: failed elsewhere, at {step!r} ({message[:width]}); "
            f"expected {case.step!r}"
        )
    return f"  MISSED  {case.mutant} @ {where}: every scenario passed ({outcome.seconds:.0f} s)"


def select(cases: Iterable[Case], *, fast: bool, only: Sequence[str]) -> list[Case]:
    chosen = [c for c in cases if (not fast or c.fast) and (not only or c.mutant in only)]
    unknown = sorted(set(only) - {c.mutant for c in CASES})
    if unknown:
        raise SystemExit(f"unknown mutant(s): {', '.join(unknown)}; known: {', '.join(mutant_names())}")
    return chosen


# Mutants caught by a check of their own rather than one scenario run: the reason says where.
CHECKED_ELSEWHERE: dict[str, str] = {
    "added_latency": "tests/test_load_mutants.py: regression.feature against a baseline of the real cluster",
}


def mutant_names() -> list[str]:
    return sorted({c.mutant for c in CASES})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="only the cases CI runs")
    parser.add_argument("--backend", default="local", choices=("local", "docker"))
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these mutants")
    parser.add_argument("--real", action="store_true", help="also run each mapped scenario unmutated")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--fail-under", type=int, default=None, metavar="N", help="least mutants caught")
    args = parser.parse_args(argv)
    cases = select(CASES, fast=args.fast, only=args.only)
    on_disk = sorted(p.parent.name for p in MUTANTS.glob("*/sitecustomize.py"))
    unmapped = sorted(set(on_disk) - set(mutant_names()) - set(CHECKED_ELSEWHERE))
    if args.list:
        for case in cases:
            print(
                f"{case.mutant:26} {case.feature:22} -k {case.keyword!r:24} {'' if case.fast else '(slow)'}"
            )
        return 0
    print(f"{len(cases)} case(s) of {len({c.mutant for c in cases})} mutant(s) on the {args.backend} backend")
    if unmapped:
        print(f"mutants mapped to no scenario: {', '.join(unmapped)}")
    caught: dict[str, list[Outcome]] = {}
    real_failures = 0
    real_done: set[tuple[str, str]] = set()
    for case in cases:
        outcome = run_case(case, mutant=True, backend=args.backend)
        caught.setdefault(case.mutant, []).append(outcome)
        print(describe(outcome), flush=True)
        if args.real and (case.feature, case.keyword) not in real_done:
            real_done.add((case.feature, case.keyword))
            real = run_case(case, mutant=False, backend=args.backend)
            real_failures += not real.passed
            print(describe(real), flush=True)
    score = sum(any(o.caught_by for o in outcomes) for outcomes in caught.values())
    missed = sorted(m for m, outcomes in caught.items() if not any(o.caught_by for o in outcomes))
    print(
        f"\nmutation score: {score}/{len(caught)} mutants caught"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    if args.real:
        print(f"real cluster: {len(real_done) - real_failures}/{len(real_done)} mapped scenarios pass")
    missed_cases = sum(o.caught_by is None for outcomes in caught.values() for o in outcomes)
    if missed_cases:
        print(f"{missed_cases} case(s) did not catch their mutant at the expected step")
    if args.fail_under is not None:
        return 0 if score >= args.fail_under and real_failures == 0 else 1
    return 0 if missed_cases == 0 and real_failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
