"""A fuzz run against a real gateway (and a real worker) over HTTP: V2 inference bodies and admin bodies.

Every answer must be 2xx, or 4xx with a JSON ``{"error": "..."}``; never a 5xx (a 5xx from a healthy
cluster to a client's malformed request is a bug), and the gateway must still answer valid requests
afterwards. The examples per group scale with ``SERVINGBDD_FUZZ_EXAMPLES`` (default 150); the last test
prints how many cases ran (``pytest -s`` shows it).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from gateway_fixtures import Cluster, infer_body
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sut.demo_models import build_demo

EXAMPLES = int(os.environ.get("SERVINGBDD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing kept between runs: each run explores afresh
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CASES: Counter[str] = Counter()  # group -> cases sent
STATUSES: Counter[int] = Counter()

# -- strategies ------------------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
datatypes = st.sampled_from(["FP32", "FP64", "INT64", "INT8", "UINT8", "BOOL", "FP16", "BYTES", "fp32", ""])
shapes = st.one_of(
    st.just([1, 4]),
    st.lists(st.integers(min_value=-2, max_value=6), max_size=4),
    st.lists(json_values, max_size=3),
    json_values,
)
tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.just("input"), st.text(max_size=8), json_values),
        "shape": shapes,
        "datatype": st.one_of(datatypes, json_values),
        "data": st.one_of(
            st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8),
            st.lists(st.integers(min_value=-(2**66), max_value=2**66), max_size=8),
            st.lists(st.lists(st.floats(width=32), max_size=4), max_size=3),
            json_values,
        ),
        "parameters": json_values,
    },
)
infer_bodies = st.one_of(
    st.fixed_dictionaries(
        {"inputs": st.one_of(st.lists(tensor, max_size=3), json_values)},
        optional={"id": json_values, "parameters": json_values, "outputs": json_values},
    ),
    json_values,
)
raw_bodies = st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode))
names = st.one_of(
    st.sampled_from(["demo", "nosuch", "demo.v", "-x", "a" * 200]), st.text(min_size=1, max_size=12)
)
uris = st.one_of(
    st.sampled_from(
        ["demo/1/model.onnx", "demo/1", "demo", "", "/etc/passwd", "../../etc/passwd", "demo/1/baseline.npy"]
    ),
    st.text(max_size=20),
    json_values,
)
version_fields = st.one_of(st.sampled_from(["1", "2", "9", "0"]), st.integers(-3, 10), json_values)
register_bodies = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"artifact_uri": uris, "version": version_fields, "parent_version": version_fields}
    ),
    json_values,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("fuzz"))
    build_demo(c.artifact_root, versions=("1",))
    try:
        c.start_gateway()
        c.register_version("demo", "demo/1/model.onnx")
        c.start_worker("w1")
        c.wait_holders("demo", "1", 1)
        yield c
    finally:
        c.close()


def check(c: Cluster, group: str, response: httpx.Response) -> None:
    """2xx with JSON, or 4xx with a JSON error; never 5xx."""
    CASES[group] += 1
    STATUSES[response.status_code] += 1
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code < 500, f"{where} answered {response.status_code}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        pytest.fail(
            f"{where} answered {response.status_code} with a body that is not JSON: {response.text[:200]}"
        )
    if response.status_code >= 400:
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
            f"{where} answered {response.status_code} without a JSON error: {response.text[:200]}"
        )


def _post(c: Cluster, path: str, payload: object, *, admin: bool = False) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **(c.admin if admin else {})}
    return c.client.post(c.url + path, content=content, headers=headers)


# -- the fuzz run ----------------------------------------------------------------------------------------
@FUZZ
@given(body=st.one_of(infer_bodies, raw_bodies))
def test_fuzzed_inference_bodies(cluster: Cluster, body: object) -> None:
    check(cluster, "infer", _post(cluster, "/v2/models/demo/infer", body))


@FUZZ
@given(
    model=names, version=st.one_of(st.none(), st.sampled_from(["1", "9"]), st.text(min_size=1, max_size=8))
)
def test_fuzzed_inference_paths(cluster: Cluster, model: str, version: str | None) -> None:
    path = f"/v2/models/{quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{quote(version, safe='')}"
    check(cluster, "infer-path", _post(cluster, path + "/infer", infer_body()))


@FUZZ
@given(model=names, body=st.one_of(register_bodies, raw_bodies))
@example(model="demo", body={"artifact_uri": "demo/1/model.onnx", "version": "2", "parent_version": "1"})
@example(model="demo", body={"artifact_uri": "demo/1/baseline.npy", "version": "3"})  # not a model
def test_fuzzed_version_registrations(cluster: Cluster, model: str, body: object) -> None:
    path = f"/admin/models/{quote(model, safe='')}/versions"
    check(cluster, "admin-register", _post(cluster, path, body, admin=True))


@FUZZ
@given(
    action=st.sampled_from(["swap", "rollback"]),
    body=st.one_of(st.fixed_dictionaries({}, optional={"version": version_fields}), json_values, raw_bodies),
)
@example(action="swap", body={"version": "3"})  # a file that is no model: every worker refuses it
@example(action="swap", body={"version": "2"})
@example(action="rollback", body={})
def test_fuzzed_swaps_and_rollbacks(cluster: Cluster, action: str, body: object) -> None:
    check(cluster, f"admin-{action}", _post(cluster, f"/admin/models/demo/{action}", body, admin=True))


@FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"labels": st.lists(st.fixed_dictionaries({"id": json_values, "values": json_values}))}
        ),
        json_values,
        raw_bodies,
    )
)
def test_fuzzed_labels(cluster: Cluster, body: object) -> None:
    check(cluster, "labels", _post(cluster, "/v2/models/demo/labels", body))


@FUZZ
@given(
    path=st.sampled_from(["/admin/audit", "/admin/feature-log"]),
    params=st.dictionaries(
        st.sampled_from(["limit", "after", "model", "action"]),
        st.one_of(st.integers(-(2**40), 2**40).map(str), st.text(max_size=8)),
        max_size=3,
    ),
)
def test_fuzzed_admin_queries(cluster: Cluster, path: str, params: dict[str, str]) -> None:
    check(cluster, "admin-query", cluster.get(path, params=params))


def test_the_gateway_still_serves_after_the_fuzz_run(cluster: Cluster) -> None:
    answers = [cluster.infer() for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
    assert cluster.get("/admin/status").status_code == 200
    total = sum(CASES.values())
    print(f"\nfuzz: {total} cases ({dict(sorted(CASES.items()))}); statuses {dict(sorted(STATUSES.items()))}")
    assert total >= EXAMPLES, "the fuzz tests must run before this one (run the whole module)"
