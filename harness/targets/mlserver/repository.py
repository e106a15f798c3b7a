"""An MLServer model repository on disk, and the operations that change what it serves.

Layout (``root`` is what ``mlserver start`` is given; the artifacts are :mod:`fixtures.sklearn_models`')::

    root/settings.json                  server: http, grpc and metrics ports, parallel workers
    root/<model>/model-settings.json    the ONE version of <model> that MLServer loads
    root/<model>/<version>/model.joblib every version's artifact

MLServer's repository API has no "version" argument: ``POST /v2/repository/models/M/load`` (re)loads
whatever versions ``model-settings.json`` files named M declare, then unloads the loaded versions no file
declares any more (``mlserver/handlers/model_repository.py``). So "make version V the loaded one" is:
rewrite ``root/M/model-settings.json`` to point at ``./V/model.joblib`` with ``version: V`` (atomically: the
server may be scanning), then POST load. MLServer registers and loads V, and only then unloads the old
version. See docs/mlserver.md for what requests see meanwhile.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from fixtures.sklearn_models import ARTIFACT_FILE, DATATYPE, FEATURES, INPUT_NAME, OUTPUT_NAME

MODEL_SETTINGS = "model-settings.json"
SERVER_SETTINGS = "settings.json"
IMPLEMENTATION = "mlserver_sklearn.SKLearnModel"
# Inference in the server's own process: on 2 shared cores an extra worker process only adds a hop
# (measured in docs/mlserver.md: p50 and p99 are lower with 0 than with 1, at 1 and at 50 users).
DEFAULT_PARALLEL_WORKERS = 0


@dataclass(frozen=True)
class ServerSettings:
    """What goes into ``settings.json``. Set all three ports: the defaults clash between instances."""

    http_port: int
    grpc_port: int
    metrics_port: int
    host: str = "127.0.0.1"  # "0.0.0.0" inside a container (published on 127.0.0.1 only)
    parallel_workers: int = DEFAULT_PARALLEL_WORKERS
    # Where the server keeps state (Prometheus multiprocess files, environments): default is its cwd,
    # which may be the read-only repository in a container.
    state_dir: str | None = None

    def as_json(self) -> dict:
        settings: dict = {
            "host": self.host,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "metrics_port": self.metrics_port,
            "parallel_workers": self.parallel_workers,
            "debug": False,  # per-request INFO lines in the log cost CPU under load
            "load_models_at_startup": True,
        }
        if self.state_dir:
            settings["metrics_dir"] = f"{self.state_dir}/metrics"
            settings["environments_dir"] = f"{self.state_dir}/envs"
        return settings


def write_server_settings(root: Path, settings: ServerSettings) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return _write_json(root / SERVER_SETTINGS, settings.as_json())


def model_settings(model: str, version: str) -> dict:
    """``model-settings.json`` serving ``root/<model>/<version>/model.joblib`` as ``version``.

    The metadata (platform, versions, inputs, outputs) is declared because MLServer's metadata endpoints
    answer only what the settings declare (empty lists otherwise); it does not enforce it on requests."""
    return {
        "name": model,
        "implementation": IMPLEMENTATION,
        "platform": "sklearn",
        "versions": [version],
        "inputs": [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": [-1, FEATURES]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": DATATYPE, "shape": [-1, 1]}],
        "parameters": {"uri": f"./{version}/{ARTIFACT_FILE}", "version": version},
    }


def select_version(root: Path, model: str, version: str) -> Path:
    """Point ``root/<model>/model-settings.json`` at ``version`` (its artifact must be there already)."""
    artifact = root / model / version / ARTIFACT_FILE
    if not artifact.is_file():
        raise FileNotFoundError(f"no artifact for {model} version {version} at {artifact}")
    return _write_json(root / model / MODEL_SETTINGS, model_settings(model, version))


def deselect(root: Path, model: str) -> None:
    """Remove ``model``'s settings file: a restarted server will not load it."""
    (root / model / MODEL_SETTINGS).unlink(missing_ok=True)


def make_repository(root: Path, settings: ServerSettings, loaded: dict[str, str]) -> Path:
    """``settings.json`` plus, for each ``model -> version`` of ``loaded``, that version's settings file.

    The artifacts must already be under ``root`` (e.g. ``fixtures.sklearn_models.build_versions(root)``).
    A model left out of ``loaded`` is not loaded at start (its folder has no settings file).
    """
    write_server_settings(root, settings)
    for model, version in loaded.items():
        select_version(root, model, version)
    return root


class RepositoryClient:
    """The "load version V" and "unload" operations against a running server serving ``root``."""

    def __init__(self, root: Path, base_url: str, *, timeout: float = 60.0) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def load_version(self, model: str, version: str) -> httpx.Response:
        """Make ``version`` of ``model`` the loaded one: rewrite its settings, then ask the server to load.

        MLServer answers once the new version is loaded and the old one unloaded (200, empty body)."""
        select_version(self.root, model, version)
        return self._post(f"/v2/repository/models/{model}/load")

    def load(self, model: str) -> httpx.Response:
        """(Re)load whatever ``model``'s settings file declares now."""
        return self._post(f"/v2/repository/models/{model}/load")

    def unload(self, model: str) -> httpx.Response:
        """Unload every version of ``model`` (MLServer has no per-version unload over HTTP)."""
        return self._post(f"/v2/repository/models/{model}/unload")

    def index(self) -> list[dict]:
        """``POST /v2/repository/index``: ``[{"name", "version", "state", "reason"}]``."""
        response = self._post("/v2/repository/index", json={})
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, json: dict | None = None) -> httpx.Response:
        with httpx.Client(timeout=self._timeout, trust_env=False) as client:
            return client.post(self.base_url + path, json=json)


def _write_json(path: Path, data: dict) -> Path:
    """Write atomically (temp file + rename): a scanning server never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path
