"""The gateway's feature log: served inputs with the answering version, labels posted back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gateway_fixtures import Cluster, infer_body, wait_until, worker_available

from sut.demo_models import build_demo
from sut.gateway.feature_log import FEATURE_LOG_FILE, FeatureLog

# -- the store on its own (real SQLite file) ----------------------------------------------------------


@pytest.fixture
def feature_log(tmp_path: Path) -> Iterator[FeatureLog]:
    log = FeatureLog.open(None, tmp_path)
    yield log
    log.close()


def test_recorded_requests_are_read_back_in_order_with_their_version(feature_log, tmp_path):
    feature_log.record("a", "demo", "1", np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32))
    feature_log.record("b", "demo", "2", np.array([[0.5, 0, 0, 0]], dtype=np.float32))
    feature_log.record("c", "other", "1", np.zeros((1, 4), dtype=np.float32))
    answer = feature_log.rows("demo")
    assert [(r["id"], r["version"], r["inputs"]) for r in answer["rows"]] == [
        ("a", "1", [[1, 2, 3, 4], [5, 6, 7, 8]]),
        ("b", "2", [[0.5, 0, 0, 0]]),
    ]
    assert answer["last_seq"] == answer["rows"][-1]["seq"]
    assert feature_log.rows("demo", after=answer["rows"][0]["seq"])["rows"][0]["id"] == "b"
    assert feature_log.rows("demo", after=answer["last_seq"]) == {"rows": [], "last_seq": answer["last_seq"]}
    assert (tmp_path / FEATURE_LOG_FILE).is_file()  # its own file, not the catalog's


def test_labels_attach_to_known_ids_and_name_the_unknown_ones(feature_log):
    feature_log.record("a", "demo", "1", np.zeros((2, 4), dtype=np.float32))
    outcome = feature_log.add_labels("demo", [("a", [1.0, 2.0]), ("nope", [3.0])])
    assert (outcome.accepted, outcome.unknown, outcome.mismatched) == (1, ["nope"], [])
    assert feature_log.rows("demo")["rows"][0]["labels"] == [1.0, 2.0]
    assert feature_log.add_labels("demo", [("a", [1.0])]).mismatched == ["a"]  # one value per row
    assert feature_log.add_labels("other", [("a", [1.0, 2.0])]).unknown == ["a"]  # ids are per model


def test_the_writer_thread_flushes_without_a_read(feature_log, tmp_path):
    feature_log.record("a", "demo", "1", np.zeros((1, 4), dtype=np.float32))
    other = FeatureLog.open(None, tmp_path)  # a second connection sees only what was written
    try:
        wait_until("the queued request to be written", lambda: len(other.rows("demo")["rows"]) == 1, 5.0)
    finally:
        other.close()


def test_the_log_is_a_table_in_the_catalogs_postgresql_database():
    from harness.postgres import PostgresServer, find_bin_dir

    try:
        find_bin_dir()
    except Exception as exc:  # no server binaries on this machine
        pytest.skip(f"no PostgreSQL server: {exc}")
    server = PostgresServer()
    try:
        server.start()
        log = FeatureLog.open(server.dsn, Path("/nonexistent"))  # no file: the table is in the DSN
        try:
            log.record("a", "demo", "1", np.array([[1, 2, 3, 4]], dtype=np.float32))
            assert log.add_labels("demo", [("a", [0.5])]).accepted == 1
            (row,) = log.rows("demo")["rows"]
            assert (row["id"], row["inputs"], row["labels"]) == ("a", [[1, 2, 3, 4]], [0.5])
        finally:
            log.close()
    finally:
        server.close()


# -- through a real gateway and worker ----------------------------------------------------------------

pytestmark_e2e = pytest.mark.skipif(not worker_available(), reason="sut.worker is not built yet")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("feature-log"), heartbeat_interval=0.25)
    try:
        build_demo(c.artifact_root, versions=("1", "2"))
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        c.register_version("demo", "demo/2/model.onnx", parent_version="1")
        c.start_worker("n0")
        c.wait_holders("demo", "1", 1)
        yield c
    finally:
        c.close()


def _logged(c: Cluster, request_id: str) -> list[dict]:
    r = c.get("/admin/feature-log", params={"model": "demo"})
    assert r.status_code == 200, r.text
    return [row for row in r.json()["rows"] if row["id"] == request_id]


@pytestmark_e2e
def test_served_requests_are_logged_with_the_version_that_answered(cluster):
    rows = [[0.5, -1.0, 2.0, 0.25], [1.0, 1.0, 1.0, 1.0]]
    r = cluster.infer(body={**infer_body(rows), "id": "req-prod"})
    assert r.status_code == 200, r.text
    assert cluster.post("/admin/models/demo/swap", {"version": "2"}).status_code == 200
    r = cluster.infer(body={**infer_body(rows), "id": "req-v2"})
    assert r.status_code == 200 and r.json()["model_version"] == "2", r.text
    (prod,) = _logged(cluster, "req-prod")
    (v2,) = _logged(cluster, "req-v2")
    assert (prod["version"], v2["version"]) == ("1", "2")
    assert prod["inputs"] == rows and prod["labels"] is None and prod["model"] == "demo"
    assert (cluster.data_dir / FEATURE_LOG_FILE).is_file() and (cluster.data_dir / "catalog.db").is_file()


@pytestmark_e2e
def test_refused_requests_are_not_logged(cluster):
    r = cluster.infer(
        body={"id": "req-bad", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32"}]}
    )
    assert r.status_code == 400
    r = cluster.infer(version="9", body={**infer_body(), "id": "req-unknown-version"})
    assert r.status_code == 404
    assert _logged(cluster, "req-bad") == [] and _logged(cluster, "req-unknown-version") == []


@pytestmark_e2e
def test_labels_are_posted_back_for_request_ids(cluster):
    r = cluster.infer(body={**infer_body([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]]), "id": "req-lab"})
    assert r.status_code == 200, r.text
    r = cluster.client.post(
        cluster.url + "/v2/models/demo/labels",
        json={"labels": [{"id": "req-lab", "values": [0.1, 0.2]}, {"id": "never-sent", "values": [1]}]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "unknown": ["never-sent"]}
    assert _logged(cluster, "req-lab")[0]["labels"] == [0.1, 0.2]


@pytestmark_e2e
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"labels": [{"id": "req-lab", "values": [1.0]}]}, 400, "one value per input row"),
        ({"labels": []}, 400, "non-empty list"),
        ({"labels": [{"id": "x", "values": ["a"]}]}, 400, "list of numbers"),
    ],
)
def test_bad_labels_are_refused_with_a_reason(cluster, body, status, words):
    cluster.infer(body={**infer_body([[0.0] * 4, [1.0] * 4]), "id": "req-lab"})
    r = cluster.client.post(cluster.url + "/v2/models/demo/labels", json=body)
    assert r.status_code == status and words in r.json()["error"], r.text


@pytestmark_e2e
def test_labels_for_an_unknown_model_are_404(cluster):
    r = cluster.client.post(
        cluster.url + "/v2/models/nope/labels", json={"labels": [{"id": "a", "values": [1]}]}
    )
    assert r.status_code == 404, r.text


@pytestmark_e2e
def test_the_feature_log_needs_the_admin_token_and_pages_by_seq(cluster):
    assert cluster.client.get(cluster.url + "/admin/feature-log").status_code == 401
    for i in range(3):
        assert cluster.infer(body={**infer_body(), "id": f"page-{i}"}).status_code == 200
    first = cluster.get("/admin/feature-log", params={"model": "demo", "limit": 1}).json()
    assert len(first["rows"]) == 1
    rest = cluster.get("/admin/feature-log", params={"model": "demo", "after": first["last_seq"]}).json()
    assert all(row["seq"] > first["last_seq"] for row in rest["rows"])
    assert [row["id"] for row in rest["rows"]][-3:] == ["page-0", "page-1", "page-2"]
