"""MLServer as a real target: the fixture model, the repository writer, and real servers.

The server tests start MLServer 1.7.1 for real (the cached venv: made on first use, ~1 min and ~530 MB;
the docker ones: the offline image, built on first use) and judge every answer against what the test
process computes from the same joblib file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fixtures.sklearn_models import (
    FEATURE_RANGES,
    MIN_VERSION_GAP,
    build_versions,
    expected_outputs,
    infer_request,
    valid_rows,
)
from harness import docker_images
from harness.targets.mlserver import env, image
from harness.targets.mlserver.repository import (
    MODEL_SETTINGS,
    RepositoryClient,
    ServerSettings,
    make_repository,
    select_version,
)
from harness.targets.mlserver.server import MLServerHandle, start_container, start_local

MODEL = "iris"
ROWS = valid_rows(5, seed=11)


# -- the fixture model and the repository files (no server) -----------------------------------------


def test_versions_answer_clearly_differently_and_are_rebuilt_identically(tmp_path: Path) -> None:
    first = build_versions(tmp_path / "a")
    again = build_versions(tmp_path / "b")
    assert first["1"].sha256 == again["1"].sha256 and first["2"].sha256 == again["2"].sha256
    rows = valid_rows(2000, seed=1)
    v1 = np.array(expected_outputs(first["1"].path, rows))
    v2 = np.array(expected_outputs(first["2"].path, rows))
    assert np.abs(v2 - v1).min() > MIN_VERSION_GAP
    assert first["1"].path == tmp_path / "a" / MODEL / "1" / "model.joblib"


def test_valid_rows_are_in_range_and_reproducible() -> None:
    rows = np.array(valid_rows(500, seed=3))
    assert rows.shape == (500, 4)
    for column, (low, high) in enumerate(FEATURE_RANGES):
        assert low <= rows[:, column].min() and rows[:, column].max() <= high
    assert valid_rows(5, seed=3) == rows[:5].tolist()
    assert valid_rows(5, seed=4) != valid_rows(5, seed=3)


def test_repository_files(tmp_path: Path) -> None:
    build_versions(tmp_path)
    make_repository(tmp_path, ServerSettings(1001, 1002, 1003, state_dir="/tmp/s"), {MODEL: "1"})
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert (settings["http_port"], settings["grpc_port"], settings["metrics_port"]) == (1001, 1002, 1003)
    assert settings["metrics_dir"] == "/tmp/s/metrics"
    model = json.loads((tmp_path / MODEL / MODEL_SETTINGS).read_text())
    assert model["parameters"] == {"uri": "./1/model.joblib", "version": "1"}
    select_version(tmp_path, MODEL, "2")
    model = json.loads((tmp_path / MODEL / MODEL_SETTINGS).read_text())
    assert model["parameters"] == {"uri": "./2/model.joblib", "version": "2"}
    with pytest.raises(FileNotFoundError, match="version 3"):
        select_version(tmp_path, MODEL, "3")
    assert not list(tmp_path.rglob("*.tmp"))


def _recipe(reqs: list[str]) -> docker_images.ImageRecipe:
    """MLServer's image recipe for ``reqs``: what :func:`image.recipe` makes, minus its wheelhouse check."""
    return docker_images.ImageRecipe(
        image.KIND, docker_images.DOCKER_DIR / "Dockerfile.mlserver", tuple(reqs)
    )


def test_venv_and_image_keys_follow_the_pins(tmp_path: Path) -> None:
    reqs = env.requirements()
    assert reqs[:3] == list(env.MLSERVER_PINS)
    assert any(pin.startswith("scikit-learn==") for pin in reqs)  # joblib files load the same there
    assert env.venv_dir(reqs, cache=tmp_path) == env.venv_dir(list(reversed(reqs)), cache=tmp_path)
    assert env.venv_dir(reqs, cache=tmp_path) != env.venv_dir([*reqs[:-1], "numpy==0.0"], cache=tmp_path)
    recipe = _recipe(reqs)
    dockerfile = recipe.resolved_dockerfile()
    tag = docker_images.image_tag(recipe, dockerfile=dockerfile, reqs=reqs, base_image_id="sha256:x")
    assert tag.startswith("servingbdd/mlserver:")
    fewer = _recipe(reqs[:-1])
    assert tag != docker_images.image_tag(
        fewer, dockerfile=dockerfile, reqs=reqs[:-1], base_image_id="sha256:x"
    )
    assert tag != docker_images.image_tag(recipe, dockerfile=dockerfile, reqs=reqs, base_image_id="sha256:y")


def test_image_context_holds_no_package_sources(tmp_path: Path, monkeypatch) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "a-1-py3-none-any.whl").write_bytes(b"x")
    monkeypatch.setattr(docker_images, "wheelhouse", lambda reqs: wheels)  # no download for this check
    recipe = _recipe(["x==1"])
    assert recipe.sources == ()
    context = tmp_path / "ctx"
    context.mkdir()
    docker_images.assemble_context(
        context, recipe=recipe, dockerfile=recipe.resolved_dockerfile(), reqs=["x==1"]
    )
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "requirements.txt", "wheels"]


# -- a real MLServer --------------------------------------------------------------------------------


def _post(server: MLServerHandle, path: str, body: dict) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.post(server.url + path, json=body)


def _outputs(response: httpx.Response) -> list[float]:
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert output["datatype"] == "FP64" and output["shape"] == [len(ROWS), 1]
    return output["data"]


def _answers_both_versions(server: MLServerHandle, root: Path, artifacts) -> None:
    """v1 loaded first: its outputs; then v2 made the loaded one: v2's outputs, v1 gone."""
    expected = {v: expected_outputs(a.path, ROWS) for v, a in artifacts.items()}
    answer = _post(server, f"/v2/models/{MODEL}/infer", infer_request(ROWS, request_id="t-1"))
    assert _outputs(answer) == pytest.approx(expected["1"], rel=1e-12)
    assert answer.json()["model_version"] == "1" and answer.json()["id"] == "t-1"
    assert RepositoryClient(root, server.url).load_version(MODEL, "2").status_code == 200
    answer = _post(server, f"/v2/models/{MODEL}/infer", infer_request(ROWS))
    assert _outputs(answer) == pytest.approx(expected["2"], rel=1e-12)
    assert answer.json()["model_version"] == "2"
    assert _post(server, f"/v2/models/{MODEL}/versions/1/infer", infer_request(ROWS)).status_code == 404
    with httpx.Client(trust_env=False, timeout=10) as client:
        metadata = client.get(f"{server.url}/v2/models/{MODEL}").json()
    assert metadata["versions"] == ["2"]
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == [answer.json()["outputs"][0]["name"]]


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MLServerHandle, Path, dict]]:
    """One MLServer process for the module, on a repository holding iris v1 and v2 (v1 loaded)."""
    base = tmp_path_factory.mktemp("mlserver")
    root = base / "repo"
    artifacts = build_versions(root)
    make_repository(root, ServerSettings(0, 0, 0), {MODEL: "1"})
    server = start_local(root, base / "work")
    try:
        server.wait_model_ready(MODEL)
        yield server, root, artifacts
    finally:
        server.stop()
    assert not server.alive()


@pytest.fixture
def v1_loaded(local_server) -> tuple[MLServerHandle, Path, dict]:
    server, root, _ = local_server
    assert RepositoryClient(root, server.url).load_version(MODEL, "1").status_code == 200
    return local_server


@pytest.mark.slow
def test_local_server_answers_what_each_version_computes(v1_loaded) -> None:
    _answers_both_versions(*v1_loaded)


@pytest.mark.slow
def test_local_load_while_requests_flow_loses_none(v1_loaded) -> None:
    server, root, artifacts = v1_loaded
    rows = valid_rows(1, seed=2)
    expected = {v: expected_outputs(a.path, rows)[0] for v, a in artifacts.items()}
    answers: list[tuple[float, int, str | None]] = []  # (sent at, status, version computed)
    stop = threading.Event()

    def user() -> None:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"/v2/models/{MODEL}/infer", json=infer_request(rows))
                except httpx.HTTPError:
                    answers.append((sent, -1, None))
                    continue
                value = response.json()["outputs"][0]["data"][0] if response.status_code == 200 else None
                computed = next(
                    (v for v, e in expected.items() if value == pytest.approx(e, rel=1e-12)), None
                )
                answers.append((sent, response.status_code, computed))
                time.sleep(0.02)

    threads = [threading.Thread(target=user) for _ in range(10)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        assert RepositoryClient(root, server.url).load_version(MODEL, "2").status_code == 200
        loaded_at = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [a for a in answers if a[1] != 200 or a[2] is None]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed or got a wrong answer: {failed[:5]}"
    assert {a[2] for a in answers if a[0] < loaded_at} >= {"1"}
    assert {a[2] for a in answers if a[0] > loaded_at} == {"2"}


@pytest.mark.slow
def test_local_unload_then_load_again(v1_loaded) -> None:
    server, root, _ = v1_loaded
    repo = RepositoryClient(root, server.url)
    assert repo.unload(MODEL).status_code == 200
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 404
        gone = client.post(f"/v2/models/{MODEL}/infer", json=infer_request(ROWS))
        assert gone.status_code == 404 and MODEL in gone.json()["error"]
    assert [(i["name"], i["state"]) for i in repo.index()] == [(MODEL, "UNAVAILABLE")]
    assert repo.load(MODEL).status_code == 200
    assert [(i["name"], i["version"], i["state"]) for i in repo.index()] == [(MODEL, "1", "READY")]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels...}`` (labels matched as a subset); 0 if absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.slow
def test_local_metrics_count_the_requests_served(v1_loaded) -> None:
    server, _, _ = v1_loaded
    infer = {"method": "POST", "path": "/v2/models/{model_name}/infer", "status_code": "200"}
    with httpx.Client(trust_env=False, timeout=10) as client:
        before = client.get(server.metrics_url).text
        for _ in range(7):
            assert (
                client.post(f"{server.url}/v2/models/{MODEL}/infer", json=infer_request(ROWS)).status_code
                == 200
            )
        after = client.get(server.metrics_url).text
        assert client.get(f"{server.url}/metrics").status_code == 404  # only on the metrics port
    assert (
        _metric(after, "rest_server_requests_total", **infer)
        - _metric(before, "rest_server_requests_total", **infer)
        == 7
    )
    assert (
        _metric(after, "rest_server_request_duration_seconds_count", **infer)
        - _metric(before, "rest_server_request_duration_seconds_count", **infer)
        == 7
    )
    assert (
        _metric(after, "model_infer_request_success_total", model=MODEL)
        - _metric(before, "model_infer_request_success_total", model=MODEL)
        == 7
    )


# -- the same server as a container ------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    try:
        docker_images.resolve_base_image(client)
    except docker_images.ImageBuildError as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_container_answers_both_versions_on_loopback_only(docker_client, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    artifacts = build_versions(root)
    make_repository(root, ServerSettings(0, 0, 0), {MODEL: "1"})
    server = start_container(root)
    try:
        server.wait_model_ready(MODEL)
        server.container.reload()
        bindings = server.container.attrs["NetworkSettings"]["Ports"]
        published = [b["HostIp"] for port in bindings.values() if port for b in port]
        assert published and set(published) == {"127.0.0.1"}
        assert server.container.labels["servingbdd.service"] == "mlserver"
        _answers_both_versions(server, root, artifacts)
        with httpx.Client(trust_env=False, timeout=10) as client:
            metrics = client.get(server.metrics_url).text
        assert _metric(metrics, "model_infer_request_success_total", model=MODEL) >= 2
    finally:
        server.stop()
    assert not docker_client.containers.list(all=True, filters={"id": server.container.id})
