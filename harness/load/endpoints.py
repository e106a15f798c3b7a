"""What the load calls: a weighted list of HTTP endpoints, handed to the locustfile as a JSON file.

The locustfile knows no model and no input: the runner writes ``endpoints.json`` (a list of
``{name, weight, method, path, body}``) and passes its path in ``SERVINGBDD_LOAD_ENDPOINTS``. A JSON-object
``body`` gets a fresh ``"id"`` per request (the V2 request id, echoed by a V2 server), so that every
sample can be matched to what the server logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")


@dataclass(frozen=True)
class Endpoint:
    name: str
    weight: int
    method: str
    path: str  # relative to the base URL, e.g. "/v2/models/demo/infer"
    body: Any = None  # JSON-serialisable; None = no body

    def __post_init__(self) -> None:
        problems = []
        if not self.name:
            problems.append("an endpoint needs a name")
        if self.weight < 0:
            problems.append(f"weight must be >= 0 (got {self.weight})")
        if self.method.upper() not in METHODS:
            problems.append(f"method {self.method!r} is not one of {list(METHODS)}")
        if not self.path.startswith("/"):
            problems.append(f"path must start with '/' (got {self.path!r})")
        if problems:
            raise ValueError(f"invalid endpoint {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "method", self.method.upper())

    @classmethod
    def of(cls, name: str, data: Mapping[str, Any], weight: int | None = None) -> Endpoint:
        """From a mapping (TOML table / JSON object); ``body`` may also be a JSON string."""
        unknown = sorted(set(data) - {"name", "weight", "method", "path", "body"})
        if unknown:
            raise ValueError(f"endpoint {name!r}: unknown key(s) {unknown}")
        body = data.get("body")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as exc:
                raise ValueError(f"endpoint {name!r}: body is not valid JSON: {exc}") from None
        return cls(
            name=name,
            weight=int(data.get("weight", 1) if weight is None else weight),
            method=str(data.get("method", "POST" if body is not None else "GET")),
            path=str(data["path"]) if "path" in data else _missing(name, "path"),
            body=body,
        )

    def with_model(self, model: str) -> Endpoint:
        """``{model}`` in the path (and in string values of the body) replaced by ``model``."""
        path = self.path.replace("{model}", model)
        return Endpoint(self.name, self.weight, self.method, path, _substitute(self.body, model))


def _missing(name: str, key: str) -> str:
    raise ValueError(f"endpoint {name!r}: {key!r} is required")


def _substitute(value: Any, model: str) -> Any:
    if isinstance(value, str):
        return value.replace("{model}", model)
    if isinstance(value, list):
        return [_substitute(v, model) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, model) for k, v in value.items()}
    return value


def check_endpoints(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    items = tuple(endpoints)
    names = [e.name for e in items]
    problems = []
    if not items:
        problems.append("no endpoint to call")
    if len(set(names)) != len(names):
        problems.append(f"endpoint names repeat: {names}")
    if items and sum(e.weight for e in items) <= 0:
        problems.append("the endpoint weights must have a positive total")
    if problems:
        raise ValueError("invalid endpoints: " + "; ".join(problems))
    return items


def write_endpoints(endpoints: Iterable[Endpoint], path: Path) -> Path:
    """The file the locustfile reads (``SERVINGBDD_LOAD_ENDPOINTS``)."""
    items = check_endpoints(endpoints)
    path.write_text(json.dumps([asdict(e) for e in items], indent=1), encoding="utf-8")
    return path


def v2_endpoints(
    model: str, version: str | None, task_mix: Mapping[str, int], infer_body: Any
) -> tuple[Endpoint, ...]:
    """The V2 calls behind the runner's legacy ``task_mix`` (infer, metadata, ready, live)."""
    model_path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
    known = {
        "infer": ("POST", f"{model_path}/infer", infer_body),
        "metadata": ("GET", model_path, None),
        "ready": ("GET", "/v2/health/ready", None),
        "live": ("GET", "/v2/health/live", None),
    }
    return tuple(
        Endpoint(name, int(weight), *known[name]) for name, weight in task_mix.items() if int(weight) > 0
    )
