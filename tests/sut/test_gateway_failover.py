"""The provider lock and failover on a real gateway with real worker pools (and a standalone worker as an
external V2 server): every answer names its provider, failures count only when they are the provider's,
one switch under concurrent failures, failback after the hold time, and the lock survives a restart.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gateway_fixtures import JOIN, Cluster, Service, infer_body, wait_until

from harness.faults.files import corrupt_file
from sut.demo_models import build_demo
from sut.gateway.failover_audit import FailoverAudit
from sut.gateway.provider_probe import canary_body
from sut.gateway.providers import classify, parse_config
from sut.protocol import BadRequest

POLICY = {"failure_threshold": 3, "hold_s": 2.0, "probe_interval_s": 0.2, "probe_timeout_s": 1.0}
TWO_POOLS = {"providers": [{"name": "primary", "pool": "a"}, {"name": "backup", "pool": "b"}], **POLICY}


def start(tmp_path: Path, **gateway_options) -> Cluster:
    c = Cluster(tmp_path, heartbeat_interval=0.5, expiry_misses=3, upstream_timeout=2.0, **gateway_options)
    build_demo(c.artifact_root, versions=("1",))
    c.start_gateway()
    c.register_version("demo", "demo/1/model.onnx")
    return c


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[Cluster]:
    c = start(tmp_path)
    try:
        c.start_worker("a1", pool="a")
        c.start_worker("b1", pool="b")
        c.wait_holders("demo", "1", 2)
        configure(c, TWO_POOLS)
        wait_until("both providers probed healthy", lambda: all_healthy(c), 20.0)
        yield c
    finally:
        c.close()


def configure(c: Cluster, body: dict) -> dict:
    answer = c.client.put(c.url + "/admin/models/demo/providers", json=body, headers=c.admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def status(c: Cluster) -> dict:
    answer = c.get("/admin/models/demo/providers")
    assert answer.status_code == 200, answer.text
    return answer.json()


def all_healthy(c: Cluster) -> bool:
    return all(p["health"]["healthy"] for p in status(c)["providers"])


def audit(c: Cluster, action: str | None = None) -> list[dict]:
    params = {"model": "demo", **({"action": action} if action else {})}
    return c.get("/admin/failover/audit", params=params).json()["entries"]


def shed(worker: Service, code: int | None) -> None:
    answer = httpx.post(
        f"{worker.url}/worker/shed", json={"status": code}, headers=JOIN, timeout=5, trust_env=False
    )
    assert answer.status_code == 200, answer.text


def provider_of(answer: httpx.Response) -> str | None:
    return answer.headers.get("x-provider")


def test_every_answer_names_the_provider_holding_the_lock(pools: Cluster) -> None:
    answers = [pools.infer() for _ in range(10)]
    assert [(a.status_code, provider_of(a)) for a in answers] == [(200, "primary")] * 10
    doc = status(pools)
    assert doc["lock"]["active"] == "primary" and doc["lock"]["switches"] == 0
    assert doc["providers"][0]["counters"]["successes"] >= 10
    assert [e["action"] for e in audit(pools)] == ["acquire"]


def test_client_errors_never_count_and_never_fail_over(pools: Cluster) -> None:
    bad = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    answers = [pools.infer(body=bad) for _ in range(100)]
    assert {a.status_code for a in answers} == {400}
    assert {provider_of(a) for a in answers} == {"primary"}
    counters = status(pools)["providers"][0]["counters"]
    assert counters["client_errors"] == 100 and counters["consecutive_failures"] == 0
    assert counters["total_failures"] == 0
    assert status(pools)["lock"]["active"] == "primary" and not audit(pools, "failover")


@pytest.mark.parametrize(("code", "reason"), [(429, "quota"), (503, "server_error")])
def test_a_failing_primary_fails_over_once_and_clients_see_less_than_the_threshold(
    pools: Cluster, code: int, reason: str
) -> None:
    shed(pools.workers[0], code)
    answers = [pools.infer() for _ in range(20)]
    errors = [a for a in answers if a.status_code != 200]
    assert len(errors) <= 2, [(a.status_code, a.text) for a in errors]  # threshold 3: at most 2 before
    assert all(provider_of(a) == "primary" for a in errors)
    assert all(provider_of(a) == "backup" for a in answers[len(errors) :])
    (failover,) = audit(pools, "failover")
    assert failover["from_provider"] == "primary" and failover["provider"] == "backup"
    assert reason in failover["reason"]
    assert failover["counters"]["primary"]["consecutive_failures"] >= 3
    assert status(pools)["providers"][0]["counters"]["failures"][reason] >= 1


def test_the_monitor_fails_over_before_any_client_notices(pools: Cluster) -> None:
    shed(pools.workers[0], 503)
    wait_until("the monitor to fail over", lambda: status(pools)["lock"]["active"] == "backup", 5.0)
    answers = [pools.infer() for _ in range(5)]
    assert [(a.status_code, provider_of(a)) for a in answers] == [(200, "backup")] * 5
    (failover,) = audit(pools, "failover")
    assert "health probe" in failover["reason"]


def test_concurrent_failures_make_exactly_one_switch(pools: Cluster) -> None:
    shed(pools.workers[0], 503)

    def one(_: int) -> tuple[int, str | None]:
        with httpx.Client(timeout=30, trust_env=False) as http:
            answer = http.post(pools.url + "/v2/models/demo/infer", json=infer_body())
            return answer.status_code, provider_of(answer)

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(one, range(80)))
    assert len(audit(pools, "failover")) == 1, audit(pools)
    assert status(pools)["lock"]["switches"] == 1
    seen = Counter(outcomes)
    assert sum(n for (code, _), n in seen.items() if code != 200) <= 2, seen
    assert all(provider == "primary" for (code, provider) in seen if code != 200)


def test_failback_after_the_hold_time_once(pools: Cluster) -> None:
    shed(pools.workers[0], 503)
    wait_until("failover", lambda: status(pools)["lock"]["active"] == "backup", 5.0)
    shed(pools.workers[0], None)
    healed = time.monotonic()
    wait_until("failback", lambda: status(pools)["lock"]["active"] == "primary", 10.0)
    took = time.monotonic() - healed
    assert took >= POLICY["hold_s"], f"failed back after {took:.2f} s, before the {POLICY['hold_s']} s hold"
    (failback,) = audit(pools, "failback")
    assert failback["from_provider"] == "backup" and failback["provider"] == "primary"
    time.sleep(1.0)
    assert [e["action"] for e in audit(pools)] == ["acquire", "failover", "failback"]


def test_a_flapping_primary_causes_one_failover_per_hold_period(pools: Cluster) -> None:
    for _ in range(4):  # down 0.6 s, up 0.6 s: never healthy for the 2 s hold
        shed(pools.workers[0], 503)
        time.sleep(0.6)
        shed(pools.workers[0], None)
        time.sleep(0.6)
    assert [e["action"] for e in audit(pools)] == ["acquire", "failover"]


def test_a_killed_pool_fails_over(pools: Cluster) -> None:
    pools.workers[0].kill()
    answers = [pools.infer() for _ in range(10)]
    assert sum(a.status_code != 200 for a in answers) <= 2
    assert provider_of(answers[-1]) == "backup" and answers[-1].status_code == 200
    assert len(audit(pools, "failover")) == 1


def test_the_lock_and_counters_survive_a_gateway_restart(pools: Cluster) -> None:
    shed(pools.workers[0], 503)
    wait_until("failover", lambda: status(pools)["lock"]["active"] == "backup", 5.0)
    [pools.infer() for _ in range(5)]
    time.sleep(0.5)  # the counters are written every 0.25 s
    before = status(pools)
    assert pools.gateway is not None
    port = int(pools.url.rsplit(":", 1)[1])
    pools.gateway.stop()
    pools.start_gateway(port)
    after = status(pools)
    assert after["lock"]["active"] == "backup" and after["lock"]["switches"] == before["lock"]["switches"]
    for old, new in zip(before["providers"], after["providers"], strict=True):
        assert new["counters"]["successes"] >= old["counters"]["successes"]
        assert new["counters"]["total_failures"] >= old["counters"]["total_failures"]
    actions = [e["action"] for e in audit(pools)]
    assert actions[:3] == ["acquire", "failover", "lock_restored"], actions
    # the pools re-register after the restart: an empty registry is no failure of the holder's pool
    time.sleep(2.5)  # past the startup grace (0.5 s heartbeat x 3)
    settled = status(pools)
    assert settled["lock"]["active"] == "backup" and settled["lock"]["switches"] == 1, audit(pools)


def test_the_lock_survives_a_catalog_recovery_and_then_a_restart(pools: Cluster) -> None:
    shed(pools.workers[0], 503)
    wait_until("failover", lambda: status(pools)["lock"]["active"] == "backup", 5.0)
    time.sleep(0.6)  # written at once on the switch; give the backup after that write a moment
    corrupt_file(pools.data_dir / "catalog.db", mode="header")
    wait_until(
        "the catalog recovered",
        lambda: (
            pools.get("/admin/status").json()["catalog"]["recoveries"] >= 1
            and pools.get("/admin/status").json()["catalog"]["state"] == "ok"
        ),
        15.0,
    )
    assert pools.gateway is not None
    port = int(pools.url.rsplit(":", 1)[1])
    pools.gateway.kill()  # after the recovery, only the recovered database knows the lock
    pools.start_gateway(port)
    after = status(pools)
    assert after["lock"]["active"] == "backup" and after["lock"]["switches"] == 1
    assert [e["action"] for e in audit(pools)][:3] == ["acquire", "failover", "lock_restored"]


def test_an_external_v2_server_as_backup(tmp_path: Path, worker_start) -> None:
    c = start(tmp_path / "cluster")
    try:
        c.start_worker("a1", pool="a")
        c.wait_holders("demo", "1", 1)
        external = worker_start(artifact_root=c.artifact_root)  # a V2 server the gateway does not manage
        load = httpx.post(
            f"{external.url}/v2/repository/models/demo/load",
            json={"parameters": {"version": "1", "artifact_uri": "demo/1/model.onnx"}},
            timeout=30,
            trust_env=False,
        )
        assert load.status_code == 200, load.text
        body = {
            "providers": [{"name": "primary", "pool": "a"}, {"name": "outside", "url": external.url}],
            **POLICY,
        }
        configure(c, body)
        wait_until("both probed healthy", lambda: all_healthy(c), 20.0)
        c.workers[0].kill()
        answers = [c.infer() for _ in range(8)]
        assert provider_of(answers[-1]) == "outside" and answers[-1].status_code == 200
        assert answers[-1].json()["outputs"][0]["data"]
    finally:
        c.close()


def test_the_audit_trail_is_bounded_and_counts_what_it_dropped(tmp_path: Path) -> None:
    c = start(tmp_path, failover_audit_limit=5)
    try:
        for _ in range(4):  # each configuration: release (after the first) + acquire
            configure(c, TWO_POOLS)
        trail = c.get("/admin/failover/audit").json()
        assert trail["limit"] == 5 and len(trail["entries"]) == 5 and trail["dropped"] == 2
        ids = [e["id"] for e in trail["entries"]]
        assert ids == sorted(ids) and ids[-1] == 7
    finally:
        c.close()


def test_a_model_without_providers_is_served_as_before(tmp_path: Path) -> None:
    c = start(tmp_path)
    try:
        c.start_worker("w1")
        c.wait_holders("demo", "1", 1)
        answer = c.infer()
        assert answer.status_code == 200 and provider_of(answer) is None
        assert c.get("/admin/models/demo/providers").status_code == 404
    finally:
        c.close()


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({}, "non-empty list"),
        ({"providers": [{"name": "x"}]}, "exactly one of"),
        ({"providers": [{"name": "x", "pool": "a"}, {"name": "x", "pool": "b"}]}, "unique"),
        ({"providers": [{"name": "x", "url": "ftp://h"}]}, "http(s) base URL"),
        ({"providers": [{"name": "x", "pool": "a"}], "failure_threshold": 0}, "failure_threshold"),
        ({"providers": [{"name": "x", "pool": "a"}], "hold_s": "long"}, "hold_s"),
    ],
)
def test_bad_provider_configurations_say_what_is_wrong(body: dict, complaint: str) -> None:
    with pytest.raises(BadRequest, match=None) as refused:
        parse_config(body)
    assert complaint in refused.value.message


def test_only_explicit_conditions_are_failures() -> None:
    assert [classify(s) for s in (200, 400, 404, 409, 413, 422)] == [None] * 6
    assert [classify(s) for s in (429, 401, 403, 500, 502, 503, 504)] == [
        "quota",
        "credentials",
        "credentials",
        "server_error",
        "server_error",
        "server_error",
        "timeout",
    ]
    assert classify(None, "connection") == "connection" and classify(None) == "connection"


def test_canary_and_audit_ring_pieces() -> None:
    body = json.loads(canary_body({"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]}))
    assert body["inputs"] == [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}]
    trail = FailoverAudit(limit=3)
    for i in range(5):
        trail.add("m", "acquire", n=i)
    assert [e["n"] for e in trail.entries] == [2, 3, 4] and trail.dropped == 2
    again = FailoverAudit(limit=2)
    again.restore(trail.document())
    assert [e["n"] for e in again.entries] == [3, 4] and again.dropped == 3 and again.next_id == 6
