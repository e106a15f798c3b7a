"""Target profiles: a deployment the harness did not start, described in TOML.

A profile is a file given with ``--target-profile FILE`` (behave: ``-D target_profile=FILE``) or the
``[tool.servingbdd.target]`` table of the project's ``pyproject.toml``::

    url = "https://staging.example.com"       # the V2 front door
    auth_header = "Authorization"             # optional: a header every request carries ...
    auth_env = "STAGING_TOKEN"                # ... whose value is read from this environment variable
    auth_prefix = "Bearer "                   # optional text before the value
    verify_tls = true                         # or the path of a CA bundle
    timeout_s = 10.0
    capabilities = ["inference", "repository", "metrics"]
    check_reachable = true                    # probe /v2/health/live before any scenario runs

    [metrics]                                 # only with the "metrics" capability
    url = "https://staging.example.com/metrics"
    request_counter = "requests_total"
    latency_histogram = "request_latency_seconds"
    model_label = "model"
    version_label = "version"
    status_label = "status"

    [[models]]
    name = "demo"
    versions = ["1", "2"]
    inputs = [{name = "input", datatype = "FP32", shape = [-1, 4]}]
    outputs = [{name = "predict", datatype = "FP32", shape = [-1, 1]}]
    [[models.examples]]                       # optional: known answers (one row each), to judge outputs;
    version = "1"                             # requests then carry these inputs (repeated for a batch)
    inputs = {input = [0.1, 0.2, 0.3, 0.4]}
    outputs = {predict = [1.234]}

Credentials are never written in the file: only the name of the variable that holds them. Every problem
is one line naming the file, the key and what was expected (:class:`ProfileError`), raised before any
scenario runs.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness.targets.base import CAPABILITIES, MetricsSpec, ModelSpec, TensorSpec

#: What an external deployment can offer: no lifecycle, no faults (the harness does not run it).
EXTERNAL_CAPABILITIES = ("inference", "repository", "metrics")


class ProfileError(ValueError):
    """A profile problem, as one line: ``FILE: KEY: what was expected``."""


@dataclass
class Example:
    version: str
    inputs: dict[str, list[Any]]
    outputs: dict[str, list[float]]


@dataclass
class Profile:
    source: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True
    timeout_s: float = 10.0
    capabilities: frozenset[str] = frozenset({"inference"})
    metrics: MetricsSpec | None = None
    models: dict[str, ModelSpec] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)  # by model

    def tls(self) -> bool | ssl.SSLContext:
        """What the HTTP clients verify the server against: on/off, or a context trusting the CA bundle
        (a file) or directory ``verify_tls`` names (httpx no longer takes the path itself)."""
        if isinstance(self.verify, bool):
            return self.verify
        if Path(self.verify).is_dir():
            return ssl.create_default_context(capath=self.verify)
        return ssl.create_default_context(cafile=self.verify)


def load_profile(path: Path, *, table: tuple[str, ...] = ()) -> Profile:
    """Read and validate a profile file (``table``: the keys of a nested table, e.g. in pyproject.toml)."""
    source = str(path)
    try:
        data: Any = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{source}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    for key in table:
        if not isinstance(data, dict) or key not in data:
            raise ProfileError(f"{source}: no [{'.'.join(table)}] table")
        data = data[key]
    return parse_profile(data, source)


def parse_profile(data: Any, source: str) -> Profile:
    reader = _Reader(data, source)
    url = reader.string("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileError(f"{source}: url: expected an http(s) URL with a host, got {url!r}")
    headers = {}
    auth_header = reader.string("auth_header", required=False)
    if auth_header:
        variable = reader.string("auth_env")
        value = os.environ.get(variable)
        if not value:
            raise ProfileError(f"{source}: auth_env: the environment variable {variable} is not set")
        headers[auth_header] = reader.string("auth_prefix", required=False, default="") + value
    verify = reader.value("verify_tls", (bool, str), required=False, default=True)
    if isinstance(verify, str) and not Path(verify).exists():
        raise ProfileError(f"{source}: verify_tls: no CA bundle or directory at {verify}")
    capabilities = reader.list("capabilities", str, required=False, default=["inference"])
    for name in capabilities:
        if name not in CAPABILITIES:
            raise ProfileError(
                f"{source}: capabilities: unknown capability {name!r}; known: {', '.join(CAPABILITIES)}"
            )
        if name not in EXTERNAL_CAPABILITIES:
            raise ProfileError(
                f"{source}: capabilities: {name!r} needs services the harness runs itself; "
                f"an external deployment can offer {', '.join(EXTERNAL_CAPABILITIES)}"
            )
    profile = Profile(
        source=source,
        url=url.rstrip("/"),
        headers=headers,
        verify=verify,
        timeout_s=float(reader.value("timeout_s", (int, float), required=False, default=10.0)),
        capabilities=frozenset({"inference", *capabilities}),
    )
    if "metrics" in profile.capabilities:
        metrics = reader.table("metrics")
        profile.metrics = MetricsSpec(
            url=metrics.string("url"),
            request_counter=metrics.string("request_counter"),
            latency_histogram=metrics.string("latency_histogram", required=False, default=None),
            model_label=metrics.string("model_label", required=False, default="model"),
            version_label=metrics.string("version_label", required=False, default=None),
            status_label=metrics.string("status_label", required=False, default=None),
        )
    for i, model in enumerate(reader.tables("models")):
        spec, examples = _model(model, f"models[{i}]")
        profile.models[spec.name] = spec
        profile.examples[spec.name] = examples
    if not profile.models:
        raise ProfileError(f"{source}: models: expected at least one [[models]] table")
    if reader.value("check_reachable", bool, required=False, default=True):
        _check_reachable(profile)
    return profile


def _model(reader: _Reader, where: str) -> tuple[ModelSpec, list[Example]]:
    name = reader.string("name")
    versions = tuple(reader.list("versions", str))
    inputs = tuple(_tensor(t) for t in reader.tables("inputs"))
    outputs = tuple(_tensor(t) for t in reader.tables("outputs", required=False))
    if not inputs:
        raise ProfileError(f"{reader.source}: {where}.inputs: expected at least one input tensor")
    examples = []
    for example in reader.tables("examples", required=False):
        version = example.string("version")
        if version not in versions:
            raise ProfileError(
                f"{example.source}: {example.where}version: {version!r} is not in {list(versions)}"
            )
        examples.append(
            Example(version, example.value("inputs", dict), example.value("outputs", dict))  # type: ignore[arg-type]
        )

    def generate(rows: int, seed: int) -> dict[str, list[Any]]:
        example = examples[seed % len(examples)]  # one row each: a batch repeats it
        return {name: list(data) * rows for name, data in example.inputs.items()}

    def expected(version: str, given: dict[str, list[Any]]) -> dict[str, list[float]]:
        for example in examples:
            if example.version != version:
                continue
            width = len(next(iter(example.inputs.values())))
            rows = len(next(iter(given.values()), [])) // max(width, 1)
            if rows and all(list(data) * rows == given.get(name) for name, data in example.inputs.items()):
                return {name: list(data) * rows for name, data in example.outputs.items()}
        raise KeyError(f"no example of {name} version {version} for these inputs")

    spec = ModelSpec(name, versions, inputs, outputs)
    if examples:  # requests carry the examples' inputs, so that their answers can be judged
        spec.generate, spec.expected = generate, expected
    return spec, examples


def _tensor(reader: _Reader) -> TensorSpec:
    shape = reader.list("shape", int)
    name, datatype = reader.string("name"), reader.string("datatype")
    try:
        return TensorSpec(name, datatype, tuple(shape))
    except ValueError as exc:
        raise ProfileError(f"{reader.source}: {reader.where}datatype: {exc}") from None


def _check_reachable(profile: Profile) -> None:
    url = f"{profile.url}/v2/health/live"
    try:
        httpx.get(
            url,
            headers=profile.headers,
            verify=profile.tls(),
            timeout=profile.timeout_s,
            trust_env=not is_loopback(profile.url),
        )
    except httpx.HTTPError as exc:
        raise ProfileError(
            f"{profile.source}: url: {profile.url} is not reachable ({type(exc).__name__}: {exc})"
        ) from None


def is_loopback(url: str) -> bool:
    """Whether ``url`` is on this machine (then no proxy from the environment may stand in between)."""
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


class _Reader:
    """Typed access to one TOML table, with errors that name the file and the key."""

    def __init__(self, data: Any, source: str, where: str = "") -> None:
        if not isinstance(data, dict):
            raise ProfileError(f"{source}: {where or 'profile'}: expected a table")
        self.data, self.source, self.where = data, source, where

    def value(self, key: str, kind: Any, *, required: bool = True, default: Any = None) -> Any:
        if key not in self.data:
            if required:
                raise ProfileError(f"{self.source}: {self.where}{key}: missing (expected {_kind_name(kind)})")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind in (int, (int, float)) and isinstance(value, bool)):
            raise ProfileError(
                f"{self.source}: {self.where}{key}: expected {_kind_name(kind)}, "
                f"got {type(value).__name__} {value!r}"
            )
        return value

    def string(self, key: str, *, required: bool = True, default: Any = None) -> Any:
        return self.value(key, str, required=required, default=default)

    def list(self, key: str, item: type, *, required: bool = True, default: Any = None) -> list[Any]:
        values = self.value(key, list, required=required, default=default)
        for i, value in enumerate(values or []):
            if not isinstance(value, item) or (item is int and isinstance(value, bool)):
                raise ProfileError(
                    f"{self.source}: {self.where}{key}[{i}]: expected {_kind_name(item)}, got {value!r}"
                )
        return list(values or [])

    def table(self, key: str) -> _Reader:
        return _Reader(self.value(key, dict), self.source, f"{self.where}{key}.")

    def tables(self, key: str, *, required: bool = True) -> list[_Reader]:
        values = self.value(key, list, required=required, default=[])
        return [_Reader(v, self.source, f"{self.where}{key}[{i}].") for i, v in enumerate(values)]


def _kind_name(kind: Any) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", list: "a list", dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)
