"""Versioning and routing of a real gateway over real workers: policies, canary controller, shadow copies,
alert-driven rollback, multi-version serving, persistence of policies, time rules under a shifted clock.

The misbehaving versions are real artifacts (``fixtures.misbehaving``): the gateway measures them failing
or slow; nothing is told to it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from gateway_fixtures import Cluster, wait_until, worker_available

from fixtures.misbehaving import FAIL_HASH, build_misbehaving
from harness import waiting
from sut.demo_models import build_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not worker_available(), reason="sut.worker is not built yet"),
]

BAD = "4"  # fails 30 % of inputs (NaN -> the worker answers 500); computes version 1's function otherwise
SLOW = "5"  # version 1's function, 300 ms slower
TWIN = "6"  # version 1's function, exactly (a shadow that must agree)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, heartbeat_interval=0.25, expiry_misses=3)
    try:
        build_demo(c.artifact_root, versions=("1", "2", "3"))
        build_misbehaving(c.artifact_root, "demo", BAD, base_version="1", fail_fraction=0.3)
        build_misbehaving(c.artifact_root, "demo", SLOW, base_version="1", delay_ms=300)
        build_misbehaving(c.artifact_root, "demo", TWIN, base_version="1")
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        for v in ("2", "3", BAD, SLOW, TWIN):
            c.register_version("demo", f"demo/{v}/model.onnx", parent_version="1")
        c.start_worker("a")
        c.start_worker("b")
        c.wait_holders("demo", "1", 2)
        yield c
    finally:
        c.close()


class Traffic:
    """Sequential requests with varied inputs (standard normals), every answer kept with its input."""

    def __init__(self, cluster: Cluster, seed: int = 0) -> None:
        self.cluster = cluster
        self.rng = np.random.default_rng(seed)
        self.answers: list[dict[str, Any]] = []
        self.only_inputs_bad_accepts = False  # inputs on which BAD never fails (it fails on a hash of x0)

    def send(self, count: int = 1, version: str | None = None) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            row = self.rng.normal(size=(1, 4)).astype(np.float32)
            while self.only_inputs_bad_accepts and (abs(float(row[0, 0])) * FAIL_HASH) % 1.0 < 0.6:
                row = self.rng.normal(size=(1, 4)).astype(np.float32)
            body = {
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row.ravel().tolist()}
                ]
            }
            started = time.time()
            r = self.cluster.infer(version=version, body=body)
            payload = r.json()
            answer = {
                "at": started,
                "status": r.status_code,
                "header": r.headers.get("x-model-version"),
                "version": payload.get("model_version"),
                "outputs": payload["outputs"][0]["data"] if r.status_code == 200 else None,
                "row": row,
            }
            out.append(answer)
        self.answers += out
        return out

    def for_seconds(self, seconds: float) -> list[dict[str, Any]]:
        batches = waiting.during(self.send, seconds=seconds, what="sending requests", interval=0)
        return [answer for batch in batches for answer in batch]

    def send_until(self, done: Callable[[], bool], *, batch: int, timeout: float) -> None:
        """Send ``batch`` requests at a time until ``done()``, for at most ``timeout`` s (the caller then
        asserts the state): the controllers judge the traffic they see, so waiting for them drives it."""

        def settled() -> bool:
            if done():
                return True
            self.send(batch)
            return False

        waiting.poll(settled, bool, timeout=timeout, interval=0)


def expected(cluster: Cluster, version: str, rows: np.ndarray) -> np.ndarray:
    """What the artifact of ``version`` computes for ``rows``, run here with onnxruntime."""
    session = ort.InferenceSession(str(cluster.artifact_root / f"demo/{version}/model.onnx"))
    return session.run(None, {"input": rows})[0].ravel()


def put(cluster: Cluster, path: str, body: dict[str, Any]) -> httpx.Response:
    return cluster.client.put(cluster.url + path, json=body, headers=cluster.admin)


def policy(cluster: Cluster) -> dict[str, Any]:
    return cluster.get("/admin/models/demo/policy").json()


def settled_in(cluster: Cluster, status: str) -> bool:
    """The canary left ``status`` and its new state is stored with its judgment (the controller acts in
    memory first: in between, the view shows the new status beside the old history)."""
    view = policy(cluster)["policy"]
    return view["status"] != status and bool(view.get("stored"))


def running(cluster: Cluster) -> bool:
    """The canary still runs (maybe at a reduced share), or its end is not stored yet (the controller acts
    in memory first)."""
    view = policy(cluster)["policy"]
    return view["status"] in ("running", "reduced") or not view.get("stored", True)


def gateway_now(cluster: Cluster) -> datetime:
    """The gateway's clock (shifted by its ``clock_offset_s``)."""
    return datetime.fromisoformat(cluster.get("/admin/clock").json()["now"].replace("Z", "+00:00"))


def production(cluster: Cluster) -> str:
    return cluster.get("/admin/models").json()[0]["aliases"]["production"]


def audit(cluster: Cluster, action: str) -> list[dict[str, Any]]:
    """The model's audit entries of ``action``, once there is one (the audit is written off the request
    path, a moment after the act)."""
    entries: list[dict[str, Any]] = []

    def written() -> bool:
        entries[:] = cluster.get("/admin/audit", params={"model": "demo", "action": action}).json()
        return bool(entries)

    wait_until(f"a {action} audit entry", written, timeout=5.0)
    return entries


def test_weighted_split_is_exact_every_answer_names_its_version_and_an_explicit_version_wins(
    cluster: Cluster,
) -> None:
    r = put(
        cluster,
        "/admin/models/demo/policy",
        {"kind": "weighted", "weights": {"1": 80, "2": 20}, "reason": "ab"},
    )
    assert r.status_code == 200, r.text
    traffic = Traffic(cluster)
    answers = traffic.send(100)
    assert Counter(a["version"] for a in answers) == {"1": 80, "2": 20}
    assert all(a["header"] == a["version"] for a in answers)
    for version in ("1", "2"):  # outputs are what that version's model computes
        mine = [a for a in answers if a["version"] == version]
        rows = np.concatenate([a["row"] for a in mine])
        np.testing.assert_allclose(
            [a["outputs"][0] for a in mine], expected(cluster, version, rows), rtol=1e-5
        )
    assert {a["version"] for a in traffic.send(20, version="1")} == {"1"}
    refused = cluster.infer(version="3")  # registered, loaded nowhere: the answer still names it
    assert refused.status_code == 503 and refused.headers["x-model-version"] == "3"
    entry = audit(cluster, "set_policy")[-1]
    assert (entry["details"]["actor"], entry["details"]["reason"]) == ("admin", "ab") and entry["at"]
    r = cluster.post("/admin/models/demo/promote", {"version": "2", "reason": "2 wins"})
    assert r.status_code == 200, r.text
    assert {a["version"] for a in traffic.send(20)} == {"2"}
    assert production(cluster) == "2" and policy(cluster)["policy"] is None
    cluster.wait_holders("demo", "1", 0, timeout=10)  # the loser is unloaded everywhere


def test_a_healthy_canary_ramps_through_every_stage_and_is_promoted(cluster: Cluster) -> None:
    body = {"kind": "canary", "canary": "2", "stages": [20, 50, 100], "stage_seconds": 0.5, "min_requests": 5}
    assert put(cluster, "/admin/models/demo/policy", body).status_code == 200
    traffic = Traffic(cluster)
    traffic.send_until(lambda: not running(cluster), batch=10, timeout=30)
    view = policy(cluster)
    assert view["policy"]["status"] == "promoted", view
    assert [(h["share"], h["verdict"]) for h in view["policy"]["history"]] == [
        (20, "pass"),
        (50, "pass"),
        (100, "pass"),
    ]
    assert view["production"] == "2"
    assert {a["version"] for a in traffic.send(20)} == {"2"}
    cluster.wait_holders("demo", "1", 0, timeout=10)
    promote = audit(cluster, "promote")[-1]["details"]
    assert promote["actor"] == "canary-controller" and "passed every stage" in promote["reason"]


@pytest.mark.parametrize(
    ("canary", "limits", "signature"),
    [(BAD, {"max_error_rate": 0.05}, "error rate"), (SLOW, {"max_p99_ms": 150}, "p99")],
)
def test_a_bad_canary_is_rolled_back_at_the_first_stage(
    cluster: Cluster, canary: str, limits: dict[str, float], signature: str
) -> None:
    body = {
        "kind": "canary",
        "canary": canary,
        "stages": [25, 100],
        "stage_seconds": 30,
        "min_requests": 10,
        **limits,
    }
    assert put(cluster, "/admin/models/demo/policy", body).status_code == 200
    traffic = Traffic(cluster)
    traffic.send_until(lambda: not running(cluster), batch=5, timeout=30)
    view = policy(cluster)["policy"]
    assert view["status"] == "rolled_back" and view["stage"] == 0, view
    assert signature in view["reason"]
    assert {a["version"] for a in traffic.send(20)} == {"1"}
    entry = audit(cluster, "canary_rollback")[-1]["details"]
    assert entry["actor"] == "canary-controller" and signature in entry["reason"]
    cluster.wait_holders("demo", canary, 0, timeout=10)  # the canary is unloaded
    failed = [a for a in traffic.answers if a["status"] != 200]
    assert all(a["header"] == canary for a in failed)  # only the canary ever failed


GRADUATED = {"reduced_share": 10, "persist_seconds": 1.5}


def graduated_canary(cluster: Cluster) -> None:
    body = {
        "kind": "canary",
        "canary": BAD,
        "stages": [50, 100],
        "stage_seconds": 30,
        # one failure breaches, and a window of 25 answers of a version failing 30 % of inputs has none
        # with probability 0.7**25 ~ 1e-4: a clean window (a false recovery) is that rare
        "min_requests": 25,
        "max_error_rate": 0.01,
        "graduated": GRADUATED,
    }
    assert put(cluster, "/admin/models/demo/policy", body).status_code == 200


def test_a_graduated_rollback_reduces_the_share_alerts_then_rolls_back_when_the_breach_persists(
    cluster: Cluster,
) -> None:
    graduated_canary(cluster)
    traffic = Traffic(cluster)
    traffic.send_until(lambda: not running(cluster), batch=5, timeout=60)
    view = policy(cluster)["policy"]
    assert view["status"] == "rolled_back", view
    verdicts = [(h["share"], h["verdict"]) for h in view["history"]]
    assert verdicts[0] == (50, "reduce") and verdicts[-1] == (10, "breach"), verdicts
    assert {v for _, v in verdicts[1:-1]} <= {"alert"} and all(share == 10 for share, _ in verdicts[1:]), (
        verdicts
    )
    assert "persisted" in view["reason"] and "reduced from 50 %" in view["reason"]
    reduced, alert, rollback = (
        audit(cluster, a)[-1] for a in ("canary_reduced", "canary_alert", "canary_rollback")
    )
    assert [e["details"]["actor"] for e in (reduced, alert, rollback)] == ["canary-controller"] * 3
    times = [datetime.fromisoformat(e["at"]) for e in (reduced, alert, rollback)]
    assert times == sorted(times)
    assert (times[2] - times[0]).total_seconds() >= GRADUATED["persist_seconds"] - 0.1
    # while reduced, the canary answered about its reduced share of the requests
    reduced_at, ended_at = times[0].timestamp(), times[2].timestamp()
    during = [a for a in traffic.answers if reduced_at + 0.1 < a["at"] < ended_at - 0.1]
    share = sum(a["header"] == BAD for a in during) / len(during)
    assert 0.02 < share < 0.2, (share, len(during))
    assert {a["version"] for a in traffic.send(20)} == {"1"}


def test_a_graduated_rollback_recovers_when_the_breach_ends(cluster: Cluster) -> None:
    graduated_canary(cluster)
    traffic = Traffic(cluster)
    traffic.send_until(lambda: settled_in(cluster, "running"), batch=5, timeout=30)
    assert policy(cluster)["policy"]["status"] == "reduced"
    traffic.only_inputs_bad_accepts = True  # the clients' inputs change: the canary stops failing
    traffic.send_until(lambda: settled_in(cluster, "reduced"), batch=5, timeout=30)
    view = policy(cluster)["policy"]
    assert (view["status"], view["stage"], view["share"]) == ("running", 0, 50), view
    assert view["history"][-1]["verdict"] == "recover" and "no longer breaches" in view["reason"]
    assert audit(cluster, "canary_recovered")[-1]["details"]["actor"] == "canary-controller"
    answers = traffic.send(40)
    assert Counter(a["version"] for a in answers) == {"1": 20, BAD: 20}  # the stage's own 50 %


def test_shadow_gets_a_copy_of_every_request_and_never_answers(cluster: Cluster) -> None:
    r = put(cluster, "/admin/models/demo/policy", {"kind": "shadow", "shadow": TWIN, "tolerance": 1e-5})
    assert r.status_code == 200, r.text
    traffic = Traffic(cluster)
    answers = traffic.send(100)
    assert {a["version"] for a in answers} == {"1"} and all(a["status"] == 200 for a in answers)
    rows = np.concatenate([a["row"] for a in answers])
    np.testing.assert_allclose([a["outputs"][0] for a in answers], expected(cluster, "1", rows), rtol=1e-5)

    def report() -> dict[str, Any]:
        return cluster.get("/admin/models/demo/shadow").json()

    wait_until("every copy compared", lambda: report()["compared"] >= 100, 10)
    seen = report()
    assert (seen["requests"], seen["copies_sent"], seen["agreed"], seen["copy_ratio"]) == (100, 100, 100, 1.0)
    # a shadow that computes something else disagrees, and its errors never reach clients
    assert put(cluster, "/admin/models/demo/policy", {"kind": "shadow", "shadow": BAD}).status_code == 200
    answers = traffic.send(100)
    assert all(a["status"] == 200 and a["version"] == "1" for a in answers)
    wait_until(
        "copies answered", lambda: report()["shadow_ok"] + sum(report()["shadow_errors"].values()) >= 100, 10
    )
    seen = report()
    assert seen["shadow_errors"].get("500", 0) > 10 and seen["agreed"] == seen["compared"]  # same function


def test_an_alert_rolls_a_failing_production_version_back(cluster: Cluster) -> None:
    assert cluster.post("/admin/models/demo/swap", {"version": "2"}).status_code == 200
    assert (
        put(
            cluster, "/admin/models/demo/alert", {"max_error_rate": 0.1, "window_s": 5, "min_requests": 10}
        ).status_code
        == 200
    )
    assert cluster.post("/admin/models/demo/swap", {"version": BAD}).status_code == 200
    traffic = Traffic(cluster)
    traffic.send_until(lambda: production(cluster) != BAD, batch=5, timeout=20)
    assert production(cluster) == "2"  # back to the version before, not to 1
    fired = audit(cluster, "alert_fired")[-1]["details"]
    assert fired["actor"] == "alert" and fired["version"] == BAD and "error rate" in fired["reason"]
    rollback = audit(cluster, "rollback")[-1]["details"]
    assert (rollback["actor"], rollback["from_version"], rollback["to_version"]) == ("alert", BAD, "2")
    assert all(a["status"] == 200 and a["version"] == "2" for a in traffic.send(30))


def test_three_versions_at_once_unload_one_and_a_load_over_the_budget(cluster: Cluster) -> None:
    for version in ("2", "3"):
        r = cluster.post(f"/admin/models/demo/versions/{version}/load")
        assert r.status_code == 200, r.text
    for worker in cluster.workers:
        status = cluster.client.get(worker.url + "/worker/status").json()
        held = {m["version"]: m["size_bytes"] for m in status["models"]}
        assert set(held) == {"1", "2", "3"} and all(size > 0 for size in held.values())
    traffic = Traffic(cluster)
    for version in ("1", "2", "3"):
        answers = traffic.send(10, version=version)
        rows = np.concatenate([a["row"] for a in answers])
        assert {a["version"] for a in answers} == {version}
        np.testing.assert_allclose(
            [a["outputs"][0] for a in answers], expected(cluster, version, rows), rtol=1e-5
        )
    refused = cluster.post("/admin/models/demo/versions/1/unload")
    assert refused.status_code == 409 and "production" in refused.json()["error"]
    assert cluster.post("/admin/models/demo/versions/2/unload").status_code == 200
    cluster.wait_holders("demo", "2", 0, timeout=5)
    assert {a["version"] for a in traffic.send(5, version="3")} == {"3"}
    assert cluster.infer(version="2").status_code == 503
    small = cluster.start_worker("tight", memory_budget=600)  # room for two demo versions (287 bytes each)
    cluster.wait_holders("demo", "1", 3)
    r = cluster.post("/admin/models/demo/versions/2/load")
    assert r.status_code == 507, r.text
    assert "budget" in r.json()["error"]
    status = cluster.client.get(small.url + "/worker/status").json()
    assert {m["version"] for m in status["models"]} == {"1", "3"}


def test_policies_survive_a_gateway_restart_and_a_catalog_recovery(cluster: Cluster) -> None:
    body = {"kind": "weighted", "weights": {"1": 50, "3": 50}}
    assert put(cluster, "/admin/models/demo/policy", body).status_code == 200
    assert put(cluster, "/admin/models/demo/alert", {"max_error_rate": 0.5}).status_code == 200
    assert cluster.gateway is not None
    port = int(cluster.url.rsplit(":", 1)[1])
    cluster.gateway.stop()
    cluster.start_gateway(port)
    cluster.wait_holders("demo", "3", 2)  # re-registered workers are told to load the policy's versions
    assert Counter(a["version"] for a in Traffic(cluster).send(20)) == {"1": 10, "3": 10}
    db = cluster.data_dir / "catalog.db"
    with db.open("r+b") as f:
        f.write(b"\0" * 100)  # the header: the gateway must notice, recover and replay from memory
    wait_until(
        "a catalog recovery", lambda: cluster.get("/admin/status").json()["catalog"]["recoveries"] >= 1, 10
    )
    cluster.gateway.stop()
    cluster.start_gateway(port)
    view = policy(cluster)
    assert view["policy"]["weights"] == {"1": 50.0, "3": 50.0} and view["alert"]["max_error_rate"] == 0.5


def test_time_rules_read_the_gateway_clock_shifted_at_start(cluster: Cluster) -> None:
    zone = ZoneInfo("Asia/Tokyo")
    weekend = {"days": ["sat", "sun"], "version": "3"}
    office = {"from": "09:00", "to": "17:00", "version": "2"}
    rules = {"kind": "time", "timezone": "Asia/Tokyo", "default": "1", "rules": [weekend, office]}
    assert put(cluster, "/admin/models/demo/policy", rules).status_code == 200
    assert cluster.gateway is not None
    port = int(cluster.url.rsplit(":", 1)[1])

    def restart_at(local: datetime) -> None:
        assert cluster.gateway is not None
        cluster.gateway.stop()
        cluster.gateway_options["clock_offset_s"] = (
            local.astimezone(UTC) - datetime.now(UTC)
        ).total_seconds()
        cluster.start_gateway(port)
        cluster.wait_holders("demo", "3", 2)

    restart_at(datetime(2025, 1, 8, 16, 59, 40, tzinfo=zone))  # a Wednesday, 20 s before 17:00 in Tokyo
    shown = gateway_now(cluster).astimezone(zone)
    assert shown.date().isoformat() == "2025-01-08" and shown.hour == 16
    before = Traffic(cluster).send(3)
    assert {a["version"] for a in before} == {"2"}
    boundary = datetime(2025, 1, 8, 17, 0, 0, tzinfo=zone) + timedelta(milliseconds=50)
    waiting.poll(lambda: gateway_now(cluster), lambda now: now >= boundary, timeout=40, interval=0.1)
    assert {a["version"] for a in Traffic(cluster).send(3)} == {"1"}  # after the boundary: the default
    restart_at(datetime(2025, 1, 11, 10, 0, 0, tzinfo=zone))  # a Saturday morning
    assert {a["version"] for a in Traffic(cluster).send(3)} == {"3"}
