"""Credentials on a real gateway process: the join token, each worker's own token, the admin token.

Every refusal must be 401 (no credential, or an unknown one) or 403 (a known credential used where it
does not belong), with a reason, counted in ``/metrics``, recorded in the audit trail and logged, and
no token may ever appear in a log line, an audit entry or an error message.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_fixtures import JOIN, JOIN_TOKEN, SERVICE_ENV, TOKEN, Cluster, free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families

from sut import launcher
from sut.gateway.auth import AuditBudget, JoinTokens
from sut.token_source import TokenSource, write_token_file

STRANGER = {"url": "http://127.0.0.1:9/stranger", "name": "stranger", "models": []}
WRONG = "not-the-join-token"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("auth"), heartbeat_interval=0.5, expiry_misses=6)
    try:
        c.start_gateway()
        yield c
    finally:
        c.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(c: Cluster, headers: dict[str, str], body: dict | None = None) -> httpx.Response:
    return c.client.post(c.url + "/internal/workers/register", json=body or STRANGER, headers=headers)


def refusals(c: Cluster) -> dict[tuple[str, str], float]:
    text = c.client.get(c.url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "sut_auth_refused_total":
                out[(sample.labels["api"], sample.labels["reason"])] = sample.value
    return out


def audited(c: Cluster, action: str = "auth_refused") -> list[dict]:
    return c.get("/admin/audit", params={"action": action}).json()


def listed_urls(c: Cluster) -> set[str]:
    return {w["url"] for w in c.get("/admin/workers").json()}


@pytest.mark.parametrize(
    ("headers", "status", "reason", "said"),
    [
        ({}, 401, "missing_token", "missing join token"),
        (bearer(WRONG), 401, "wrong_token", "wrong join token"),
        ({"Authorization": "Basic abc"}, 401, "missing_token", "missing join token"),
        (bearer(TOKEN), 403, "wrong_kind", "the admin token is not a join token"),
    ],
)
def test_registration_without_the_join_token_is_refused_counted_and_audited(
    cluster: Cluster, headers: dict[str, str], status: int, reason: str, said: str
) -> None:
    before = refusals(cluster).get(("worker", reason), 0)
    answer = register(cluster, headers)
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert STRANGER["url"] not in listed_urls(cluster)
    assert refusals(cluster)[("worker", reason)] == before + 1
    entries = wait_until_audited(cluster, lambda e: e["details"]["reason"] == reason)
    assert entries[-1]["details"]["request"] == "POST /internal/workers/register"
    assert entries[-1]["details"]["status"] == status


def wait_until_audited(c: Cluster, match) -> list[dict]:  # the audit is written off the request path
    found: list[dict] = []

    def check() -> bool:
        found[:] = [e for e in audited(c) if match(e)]
        return bool(found)

    wait_until("the refusal in the audit trail", check, timeout=5.0)
    return found


def test_a_worker_with_the_join_token_registers_and_gets_its_own_token(cluster: Cluster) -> None:
    answer = register(cluster, JOIN, {**STRANGER, "url": "http://127.0.0.1:9/legit"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["worker_token"]) >= 20
    listed = [w for w in cluster.get("/admin/workers").json() if w["id"] == body["id"]]
    assert listed and "worker_token" not in listed[0] and "token_digest" not in listed[0]


def test_only_the_worker_itself_may_heartbeat_or_deregister(cluster: Cluster) -> None:
    mine = register(cluster, JOIN, {**STRANGER, "url": "http://127.0.0.1:9/mine"}).json()
    other = register(cluster, JOIN, {**STRANGER, "url": "http://127.0.0.1:9/other"}).json()
    beat = f"{cluster.url}/internal/workers/{other['id']}/heartbeat"
    leave = f"{cluster.url}/internal/workers/{other['id']}"
    as_mine = {**JOIN, "X-Worker-Token": mine["worker_token"]}
    cases = [
        ({}, 401, "missing join token"),
        (bearer(WRONG), 401, "wrong join token"),
        (bearer(TOKEN), 403, "the admin token is not a join token"),
        (JOIN, 401, "missing worker token"),
        (as_mine, 403, f"may only deregister itself: this worker token does not belong to {other['id']}"),
    ]
    for headers, status, said in cases:
        answer = cluster.client.delete(leave, headers=headers)
        assert (answer.status_code, said in answer.json()["error"]) == (status, True), answer.text
        beat_said = said.replace("deregister", "heartbeat")
        answer = cluster.client.post(beat, json={"models": []}, headers=headers)
        assert (answer.status_code, beat_said in answer.json()["error"]) == (status, True), answer.text
    assert other["id"] in {w["id"] for w in cluster.get("/admin/workers").json()}
    assert refusals(cluster)[("worker", "not_owner")] >= 2
    as_other = {**JOIN, "X-Worker-Token": other["worker_token"]}
    assert cluster.client.post(beat, json={"models": []}, headers=as_other).status_code == 200
    assert cluster.client.delete(leave, headers=as_other).status_code == 200
    assert other["id"] not in {w["id"] for w in cluster.get("/admin/workers").json()}


def test_an_unknown_worker_id_is_404_for_a_joined_caller(cluster: Cluster) -> None:
    answer = cluster.client.post(
        f"{cluster.url}/internal/workers/w-nobody/heartbeat", json={}, headers={**JOIN, "X-Worker-Token": "x"}
    )
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status", "reason", "said"),
    [
        ({}, 401, "missing_token", "missing admin token"),
        (bearer("wrong-admin"), 401, "wrong_token", "wrong admin token"),
        (JOIN, 403, "wrong_kind", "a join token cannot use the admin API"),
    ],
)
def test_the_admin_api_refuses_no_token_a_wrong_one_and_the_join_token(
    cluster: Cluster, headers: dict[str, str], status: int, reason: str, said: str
) -> None:
    before = refusals(cluster).get(("admin", reason), 0)
    answer = cluster.client.get(cluster.url + "/admin/workers", headers=headers)
    assert answer.status_code == status and said in answer.json()["error"], answer.text
    assert refusals(cluster)[("admin", reason)] == before + 1
    wait_until_audited(cluster, lambda e: e["details"]["api"] == "admin" and e["details"]["reason"] == reason)


def test_no_token_is_ever_logged_audited_or_echoed(cluster: Cluster) -> None:
    worker = register(cluster, JOIN, {**STRANGER, "url": "http://127.0.0.1:9/quiet"}).json()
    register(cluster, bearer(WRONG))
    cluster.client.get(cluster.url + "/admin/status", headers=bearer("wrong-admin-secret"))
    forged = {**JOIN, "X-Worker-Token": "forged-1"}
    cluster.client.delete(f"{cluster.url}/internal/workers/{worker['id']}", headers=forged)
    time.sleep(0.3)
    secrets = [TOKEN, JOIN_TOKEN, WRONG, "wrong-admin-secret", "forged-1", worker["worker_token"]]
    assert cluster.gateway is not None
    log = cluster.gateway.log()
    audit = cluster.get("/admin/audit").text
    status = cluster.get("/admin/status").text
    for secret in secrets:
        assert secret not in log
        assert secret not in audit
        assert secret not in status
    assert "refused POST /internal/workers/register" in log


def test_the_join_token_rotates_without_a_restart_with_an_overlap(tmp_path: Path) -> None:
    join_file = write_token_file(tmp_path / "secrets" / "join_token", "first-join-token")
    c = Cluster(tmp_path, join_token_file=join_file, join_token_overlap=1.5)
    try:
        c.start_gateway()
        assert register(c, bearer("first-join-token")).status_code == 200
        assert register(c, JOIN).status_code == 401  # the file wins over SUT_JOIN_TOKEN
        write_token_file(join_file, "second-join-token")
        rotated = time.monotonic()
        assert register(c, bearer("second-join-token")).status_code == 200
        assert register(c, bearer("first-join-token")).status_code == 200  # within the overlap
        status = c.get("/admin/status").json()["join_token"]
        assert status["rotations"] == 1 and status["previous_accepted"] is True
        assert status["overlap_s"] == 1.5
        time.sleep(max(0.0, rotated + 1.7 - time.monotonic()))
        stale = register(c, bearer("first-join-token"))
        assert stale.status_code == 401 and "wrong join token" in stale.json()["error"]
        assert register(c, bearer("second-join-token")).status_code == 200
        assert c.get("/admin/status").json()["join_token"]["previous_accepted"] is False
        wait_until("the rotation in the audit trail", lambda: bool(audited(c, "join_token_rotated")), 5.0)
    finally:
        c.close()


def test_a_gateway_needs_a_join_token_that_differs_from_the_admin_token(tmp_path: Path) -> None:
    argv = launcher.gateway_command(port=free_port(), data_dir=tmp_path, artifact_root=tmp_path)
    without = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**_plain_env(), "SUT_ADMIN_TOKEN": TOKEN}
    )
    assert without.returncode == 2 and "join-token-file (or env SUT_JOIN_TOKEN) is required" in without.stderr
    same = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={**_plain_env(), **launcher.service_env(admin_token=TOKEN, join_token=TOKEN)},
    )
    assert same.returncode == 2 and "must differ from the admin token" in same.stderr
    assert TOKEN not in without.stderr + same.stderr


def _plain_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}


# -- the pieces, without a process ------------------------------------------------------------------


def test_join_tokens_accept_the_previous_one_only_during_the_overlap(tmp_path: Path) -> None:
    now = [1000.0]
    path = write_token_file(tmp_path / "join", "alpha")
    tokens = JoinTokens(TokenSource(path=path), overlap_s=10.0, clock=lambda: now[0])
    assert tokens.accepts("alpha") and not tokens.accepts("beta") and not tokens.accepts("")
    write_token_file(path, "beta")
    assert tokens.accepts("beta") and tokens.accepts("alpha")
    now[0] += 9.9
    assert tokens.accepts("alpha")
    now[0] += 0.2
    assert not tokens.accepts("alpha") and tokens.accepts("beta")
    path.unlink()  # a missing file keeps the last good token, and says so
    assert tokens.accepts("beta") and tokens.status()["read_error"] is None  # cached: same stamp gone
    assert tokens.rotations == 1


def test_a_join_token_file_holding_the_admin_token_is_not_taken(tmp_path: Path) -> None:
    from sut.gateway.auth import digest

    path = write_token_file(tmp_path / "join", "alpha")
    tokens = JoinTokens(TokenSource(path=path), overlap_s=10.0, forbidden=digest("admin-secret"))
    write_token_file(path, "admin-secret")
    assert not tokens.accepts("admin-secret") and tokens.accepts("alpha")
    assert "holds the admin token" in tokens.status()["read_error"]


def test_the_audit_budget_caps_refusal_entries_per_window_and_counts_the_rest() -> None:
    budget = AuditBudget(burst=3, window_s=10.0)
    admitted = [budget.admit(100.0 + i * 0.1)[0] for i in range(8)]
    assert admitted == [True, True, True, False, False, False, False, False]
    audit, suppressed = budget.admit(111.0)  # a new window: the old one's count is reported once
    assert (audit, suppressed) == (True, 5)
    assert budget.admit(111.1) == (True, 0)
    assert budget.suppressed_total == 5
