"""The gateway driver against a real cluster: answers, recorded observations, admin calls, failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.models import demo_versions
from harness import trace
from harness.backends.local import LocalBackend
from harness.drivers.gateway import AdminError, GatewayClient, production_versions
from harness.drivers.v2 import request_inputs
from harness.observations import Observations
from harness.processes import free_port
from harness.targets.base import ModelSpec, mismatches
from harness.targets.reference import ClusterSpec, ReferenceCluster
from harness.targets.reference.models import model_spec

TOKEN = "driver-test-token"


@pytest.fixture(scope="module")
def driver_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceCluster]:
    """One cluster for the module (gateway + 1 worker); tests leave its state as they found it."""
    root = tmp_path_factory.mktemp("driver")
    demo_versions(root / "artifacts", ("1", "2", "3"))
    backend = LocalBackend(root / "cluster")
    cluster = ReferenceCluster(backend)
    try:
        cluster.start(
            ClusterSpec(
                workers=1,
                heartbeat_interval=0.5,
                admin_token=TOKEN,
                artifact_root=root / "artifacts",
                preload=[("demo", "1", "demo/1/model.onnx"), ("demo", "2", "demo/2/model.onnx")],
            )
        )
        yield cluster
    finally:
        cluster.teardown()
        backend.teardown()


def _models(cluster: ReferenceCluster) -> Callable[[str], ModelSpec]:
    """The reference target's model specs (the demo's tensors, its artifacts' right answers)."""
    assert cluster.spec is not None and cluster.spec.artifact_root is not None
    root = cluster.spec.artifact_root
    return lambda name: model_spec(root, name)


def _client(cluster: ReferenceCluster, base_url: str | None = None, token: str = TOKEN) -> GatewayClient:
    return GatewayClient(
        base_url or cluster.gateway_url,
        admin_token=token,
        models=_models(cluster),
        observations=Observations(),
    )


@pytest.fixture
def client(driver_cluster: ReferenceCluster) -> Iterator[GatewayClient]:
    gateway = _client(driver_cluster)
    yield gateway
    gateway.close()


def test_infer_answers_with_the_production_version_and_is_recorded(client: GatewayClient) -> None:
    answer = client.infer("demo", request_id="req-1")
    assert answer.status == 200 and answer.ok and answer.error is None
    assert answer.model_version == "1"
    assert answer.body["id"] == "req-1"
    assert answer.body["outputs"][0]["shape"] == [1, 1]
    (obs,) = list(client.observations)
    assert (obs.status, obs.model_version, obs.request_id) == (200, "1", "req-1")
    assert obs.target == "POST /v2/models/demo/infer"
    assert obs.source == "driver" and 0 < obs.latency_s == answer.latency_s


def test_the_request_comes_from_the_model_spec_and_the_answer_is_what_the_artifact_computes(
    client: GatewayClient,
) -> None:
    spec = client.model_spec("demo")
    answer = client.infer("demo", rows=4, seed=7)
    assert answer.ok and answer.request is not None
    (tensor,) = answer.request["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("input", "FP32", [4, 4])
    assert request_inputs(answer.request) == spec.rows(4, seed=7)
    assert spec.expected is not None
    expected = spec.expected("1", request_inputs(answer.request))
    assert mismatches(expected, answer.outputs, spec.tolerance) == []
    # judged against another version's artifact, the same answer is wrong: the check can fail
    assert mismatches(spec.expected("2", request_inputs(answer.request)), answer.outputs, spec.tolerance)


def test_a_version_no_worker_holds_is_a_503_naming_it(client: GatewayClient) -> None:
    one = client.infer("demo", version="1", rows=3)
    assert one.model_version == "1" and one.body["outputs"][0]["shape"] == [3, 1]
    again = client.infer("demo", version="1", rows=3)
    assert again.body["outputs"][0]["data"] == one.body["outputs"][0]["data"]  # deterministic rows
    two = client.infer("demo", version="2")  # registered, but only production is loaded
    assert two.status == 503 and two.model_version is None
    assert "demo" in (two.error or "") and "2" in (two.error or "")


def test_explicit_inputs_are_sent_as_given(client: GatewayClient) -> None:
    inputs = [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [0.0] * 8}]
    answer = client.infer("demo", inputs=inputs)
    assert answer.ok and answer.body["outputs"][0]["shape"] == [2, 1]
    wrong = [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [0.0] * 3}]
    bad = client.infer("demo", inputs=wrong)
    assert bad.status == 400 and bad.error and not bad.ok


def test_errors_carry_the_error_field(client: GatewayClient) -> None:
    missing = client.infer("no-such-model")
    assert missing.status == 404
    assert missing.error and "no-such-model" in missing.error
    raw = client.infer_raw("/v2/models/demo/infer", b"{not json")
    assert raw.status == 400 and raw.error
    assert [o.status for o in client.observations] == [404, 400]
    assert client.observations.select()[0].error == missing.error


def test_health_and_metadata(client: GatewayClient) -> None:
    assert client.live().status == 200
    assert client.ready().status == 200
    meta = client.model_metadata("demo")
    assert meta.ok and meta.body["name"] == "demo" and meta.body["platform"] == "onnxruntime_onnx"
    assert client.model_metadata("demo", "1").ok
    assert len(client.observations) == 0  # only inference is an observation


def test_admin_queries(client: GatewayClient, driver_cluster: ReferenceCluster) -> None:
    status = client.status()
    assert status["models"][0]["aliases"]["production"] == "1"
    (worker,) = client.workers()
    assert worker["id"] == driver_cluster.worker_id("worker-1")
    assert [m["name"] for m in client.models()] == ["demo"]
    assert {v["version"] for v in client.versions("demo")} >= {"1", "2"}
    assert any(e["action"] == "register_version" for e in client.audit())
    assert client.production("demo") == "1"
    assert client.production("no-such-model") is None


def test_production_versions_parses_the_production_alias_of_each_catalog_entry() -> None:
    entries = [
        {"name": "demo", "aliases": {"production": "2", "canary": "3"}},
        {"name": "numeric", "aliases": {"production": 7}},
        {"name": "no-alias", "aliases": {}},
        {"name": "null-aliases", "aliases": None},
        {"name": "bare"},
    ]
    assert production_versions(entries) == {"demo": "2", "numeric": "7"}
    assert production_versions([]) == {}


def test_admin_with_a_wrong_token_raises_with_the_status(driver_cluster: ReferenceCluster) -> None:
    intruder = _client(driver_cluster, token="wrong")
    try:
        with pytest.raises(AdminError, match="401") as err:
            intruder.workers()
        assert err.value.answer.status == 401
        assert intruder.swap("demo", "2").status == 401
    finally:
        intruder.close()


def test_register_swap_and_rollback(client: GatewayClient) -> None:
    registered = client.register_version("demo", "demo/3/model.onnx", version="3", parent_version="1")
    assert registered.status == 201, registered.error
    assert registered.body["parent_version"] == "1"
    assert client.register_version("demo", "demo/404/model.onnx").status == 404
    before = client.infer("demo", rows=3)
    swapped = client.swap("demo", "3")
    assert swapped.ok, swapped.error
    assert (swapped.body["from_version"], swapped.body["to_version"]) == ("1", "3")
    assert client.production("demo") == "3"
    after = client.infer("demo", rows=3)
    assert (before.model_version, after.model_version) == ("1", "3")
    assert before.body["outputs"][0]["data"] != after.body["outputs"][0]["data"]
    back = client.rollback("demo")
    assert back.ok and back.body["to_version"] == "1", back.body
    assert client.production("demo") == "1"
    assert client.infer("demo").model_version == "1"


def test_no_answer_is_status_zero_not_an_exception(driver_cluster: ReferenceCluster, tmp_path: Path) -> None:
    nobody = _client(driver_cluster, f"http://127.0.0.1:{free_port()}")
    try:
        answer = nobody.infer("demo")
        assert answer.status == 0 and not answer.ok and "ConnectError" in (answer.error or "")
        assert [o.status for o in nobody.observations] == [0]
    finally:
        nobody.close()


def test_a_client_timeout_is_status_zero(driver_cluster: ReferenceCluster, client: GatewayClient) -> None:
    driver_cluster.backend.pause("gateway")  # accepts the connection (kernel backlog) but never answers
    try:
        answer = client.infer("demo", timeout=0.3)
    finally:
        driver_cluster.backend.resume("gateway")
    assert answer.status == 0 and "Timeout" in (answer.error or "")
    assert 0.25 < answer.latency_s < 5
    assert client.infer("demo").ok  # the gateway serves again once resumed


def test_every_call_touches_the_trace(client: GatewayClient) -> None:
    with trace.step("when", "I call the gateway", "x.feature:1", "steps/x.py:1") as record:
        client.live()
        client.infer("demo")
        client.workers()
    assert record.touches == 3 and record.kinds == ["http"]
