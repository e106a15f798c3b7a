"""The catalog and the admin API of a real gateway process: versions, aliases, audit, persistence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_fixtures import Cluster, infer_body

from sut.demo_models import build_demo


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    build_demo(c.artifact_root, versions=("1", "2", "3"))
    try:
        c.start_gateway()
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One gateway for the tests that must not change anything."""
    c = Cluster(tmp_path_factory.mktemp("catalog-shared"))
    build_demo(c.artifact_root, versions=("1",))
    try:
        c.start_gateway()
        yield c
    finally:
        c.close()


ADMIN_CALLS = [
    ("GET", "/admin/status"),
    ("GET", "/admin/workers"),
    ("GET", "/admin/models"),
    ("GET", "/admin/models/demo/versions"),
    ("POST", "/admin/models/demo/versions"),
    ("POST", "/admin/models/demo/swap"),
    ("POST", "/admin/models/demo/rollback"),
    ("GET", "/admin/audit"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic Zm9vOmJhcg==", "Bearer"])
def test_admin_refuses_without_the_right_token(
    shared: Cluster, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = shared.client.request(
        method, shared.url + path, headers=headers, json={"artifact_uri": "demo/1/model.onnx"}
    )
    assert r.status_code == 401
    assert "token" in r.json()["error"]
    assert shared.get("/admin/models").json() == []  # nothing was registered behind its back


def test_registering_versions_computes_sha256_and_sets_production_once(cluster: Cluster) -> None:
    v1 = cluster.register_version("demo", "demo/1/model.onnx")
    data = (cluster.artifact_root / "demo/1/model.onnx").read_bytes()
    assert v1["version"] == "1"
    assert v1["sha256"] == hashlib.sha256(data).hexdigest()
    assert v1["size_bytes"] == len(data)
    assert v1["parent_version"] is None
    assert v1["created_at"].endswith("Z")
    v2 = cluster.register_version("demo", "demo/2/model.onnx", parent_version="1")
    assert v2["version"] == "2"
    assert v2["parent_version"] == "1"
    v7 = cluster.register_version("demo", "demo/3/model.onnx", version="7")
    assert v7["version"] == "7"
    models = cluster.get("/admin/models").json()
    assert models == [{"name": "demo", "versions": ["1", "2", "7"], "aliases": {"production": "1"}}]
    listed = cluster.get("/admin/models/demo/versions").json()
    assert [v["version"] for v in listed] == ["1", "2", "7"]
    assert (
        listed[1]["sha256"]
        == hashlib.sha256((cluster.artifact_root / "demo/2/model.onnx").read_bytes()).hexdigest()
    )


@pytest.mark.parametrize(
    ("body", "status", "complaint"),
    [
        ({"artifact_uri": "demo/9/model.onnx"}, 404, "not found"),
        ({"artifact_uri": "../outside.onnx"}, 400, "outside the artifact root"),
        ({"artifact_uri": "/etc/hostname"}, 400, "relative"),
        ({}, 400, "artifact_uri"),
        ({"artifact_uri": 42}, 400, "artifact_uri"),
        ({"artifact_uri": "demo/2/model.onnx", "parent_version": "5"}, 404, "parent version '5'"),
        ({"artifact_uri": "demo/2/model.onnx", "version": "a/b"}, 400, "invalid version"),
        ({"artifact_uri": "demo/2/model.onnx", "version": "1"}, 409, "already has version '1'"),
    ],
)
def test_bad_version_registration_is_4xx_saying_why(
    cluster: Cluster, body: dict, status: int, complaint: str
) -> None:
    cluster.register_version("demo", "demo/1/model.onnx")
    r = cluster.post("/admin/models/demo/versions", body)
    assert r.status_code == status, r.text
    assert complaint in r.json()["error"]
    assert [v["version"] for v in cluster.get("/admin/models/demo/versions").json()] == ["1"]


def test_malformed_admin_body_is_400(cluster: Cluster) -> None:
    r = cluster.client.post(
        cluster.url + "/admin/models/demo/versions", headers=cluster.admin, content=b"{oops"
    )
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["error"]


def test_unknown_model_is_404_everywhere(cluster: Cluster) -> None:
    assert cluster.get("/admin/models/nope/versions").status_code == 404
    assert cluster.post("/admin/models/nope/swap", {"version": "1"}).status_code == 404
    assert cluster.post("/admin/models/nope/rollback").status_code == 404
    r = cluster.infer("nope")
    assert r.status_code == 404
    assert "'nope'" in r.json()["error"]


def test_infer_is_validated_at_the_gateway(cluster: Cluster) -> None:
    cluster.register_version("demo", "demo/1/model.onnx")
    r = cluster.infer("demo", version="5")
    assert r.status_code == 404
    assert "version '5'" in r.json()["error"]
    bad = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}
    r = cluster.infer("demo", body=bad)
    assert r.status_code == 400
    assert "needs 4 values" in r.json()["error"]
    r = cluster.client.post(cluster.url + "/v2/models/demo/infer", content=b"[")
    assert r.status_code == 400
    # valid, known, but no worker holds it: 503 naming model, version and reason
    r = cluster.infer("demo", body=infer_body())
    assert r.status_code == 503
    error = r.json()["error"]
    assert "'demo'" in error and "'1'" in error and "no workers are registered" in error


def test_audit_records_admin_actions(cluster: Cluster) -> None:
    cluster.register_version("demo", "demo/1/model.onnx")
    cluster.register_version("demo", "demo/2/model.onnx", parent_version="1")
    audit = cluster.get("/admin/audit").json()
    actions = [(e["action"], e["model"]) for e in audit]
    assert actions == [
        ("register_version", "demo"),
        ("set_alias", "demo"),
        ("register_version", "demo"),
    ]
    assert audit[0]["details"]["version"] == "1"
    assert audit[1]["details"] == {"alias": "production", "from_version": None, "to_version": "1"}
    ids = [e["id"] for e in audit]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(e["at"].endswith("Z") for e in audit)


def test_catalog_survives_a_gateway_restart(cluster: Cluster) -> None:
    cluster.register_version("demo", "demo/1/model.onnx")
    cluster.register_version("demo", "demo/2/model.onnx", parent_version="1")
    before = (cluster.get("/admin/models").json(), cluster.get("/admin/models/demo/versions").json())
    audit_before = cluster.get("/admin/audit").json()
    assert cluster.gateway is not None
    cluster.gateway.stop()
    assert (cluster.data_dir / "catalog.db").exists()
    cluster.start_gateway()
    after = (cluster.get("/admin/models").json(), cluster.get("/admin/models/demo/versions").json())
    assert after == before
    assert cluster.get("/admin/audit").json() == audit_before
    v3 = cluster.register_version("demo", "demo/3/model.onnx", parent_version="2")
    assert v3["version"] == "3"  # numbering continues from the stored versions


def test_metrics_count_requests_by_model_version_and_status(cluster: Cluster) -> None:
    cluster.register_version("demo", "demo/1/model.onnx")
    assert cluster.infer("demo").status_code == 503
    text = cluster.client.get(cluster.url + "/metrics").text
    assert 'sut_requests_total{model="demo",status="503",version="1"} 1.0' in text
    assert "sut_request_latency_seconds_bucket" in text
    assert 'sut_workers{state="healthy"} 0.0' in text


def test_alias_history_survives_a_restart_so_rollback_still_works(cluster: Cluster) -> None:
    cluster.register_version("demo", "demo/1/model.onnx")
    cluster.register_version("demo", "demo/2/model.onnx", parent_version="1")
    r = cluster.post("/admin/models/demo/swap", {"version": "2"})  # no worker yet: only the alias moves
    assert r.status_code == 200, r.text
    assert (r.json()["from_version"], r.json()["to_version"], r.json()["workers"]) == ("1", "2", [])
    assert cluster.gateway is not None
    cluster.gateway.stop()
    cluster.start_gateway()
    assert cluster.get("/admin/models").json()[0]["aliases"] == {"production": "2"}
    r = cluster.post("/admin/models/demo/rollback")
    assert r.status_code == 200, r.text
    assert (r.json()["from_version"], r.json()["to_version"]) == ("2", "1")
    assert cluster.get("/admin/models").json()[0]["aliases"] == {"production": "1"}
    actions = [e["action"] for e in cluster.get("/admin/audit").json()]
    assert actions[-2:] == ["set_alias", "rollback"] and "swap" in actions
