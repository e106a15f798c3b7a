"""Targets: the serving systems the features test, each declaring what it can do.

The core of the harness knows no particular server. A :class:`Target` is one system under test — the
reference cluster (:mod:`harness.targets.reference`), MLServer (:mod:`harness.targets.mlserver`), or a
deployment the harness did not start (:mod:`harness.targets.external`) — and declares

* its **capabilities** (:data:`CAPABILITIES`): what steps may ask of it. A step names the capabilities it
  needs (``@given(..., needs=("admin",))``); a scenario whose steps need one the target lacks is reported
  skipped, naming the target and the capability, before anything starts;
* its **models** (:class:`ModelSpec`): input tensors, a generator of valid rows, and, where the harness
  can know it, what each version must answer for an input (so features judge outputs, not labels);
* how it **serves** a set of model versions on a backend (or, for an external deployment, checks that it
  does), where its V2 front door and its Prometheus metrics are, and how a new version is loaded.

One target instance per scenario, like the backend it runs on.
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from harness.docker_images import ImageRecipe
    from harness.world import World

#: Every capability a target may declare, and what a step needing it may do.
CAPABILITIES: dict[str, str] = {
    "inference": "V2 inference, model metadata and readiness (every target has it)",
    "repository": "V2 repository extension: load a model version, unload, list the repository",
    "admin": "the reference cluster's admin API: catalog, versions, aliases, swap/rollback, audit, registry",
    "metrics": "a Prometheus endpoint: a request counter (by model, version, status), a latency histogram",
    "lifecycle": "the harness runs the services: stop, kill, pause and restart them",
    "workers": "a front door over worker processes the harness can add, list and act on by name",
    "links": "in-path network faults on the links between services (partition, latency)",
    "memory": "memory truth and faults: a service's memory measured from outside, limits, OOM kills",
    "catalog-db": "the catalog database: its files can be damaged, its server killed",
    "trainer": "a drift monitor that retrains and rolls out models by itself",
}


class CapabilityMissing(Exception):
    """A step needs a capability the target lacks: the scenario is skipped (not failed) with this reason."""

    def __init__(self, target: str, capability: str, step: str = "") -> None:
        self.target, self.capability, self.step = target, capability, step
        where = f" (needed by the step {step!r})" if step else ""
        what = CAPABILITIES.get(capability, "")
        super().__init__(f"target {target!r} lacks the capability {capability!r}{where}: {what}")


class TargetError(RuntimeError):
    """The target could not do what was asked; the message says what and why."""


# -- models ------------------------------------------------------------------------------------------
_DATATYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "BOOL", "BYTES"}


@dataclass(frozen=True)
class TensorSpec:
    """One V2 tensor: its name, datatype and shape (``-1`` marks the batch dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.datatype not in _DATATYPES:
            raise ValueError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}")

    def concrete_shape(self, rows: int) -> list[int]:
        return [rows if d < 0 else d for d in self.shape]

    def size(self, rows: int) -> int:
        return math.prod(self.concrete_shape(rows))


#: Given a row count and a seed, the flat data of each input tensor (row-major), by tensor name.
InputGenerator = Callable[[int, int], dict[str, list[Any]]]
#: Given a version and the inputs, what that version must answer: output name -> flat data.
ExpectedOutputs = Callable[[str, dict[str, list[Any]]], dict[str, list[float]]]


@dataclass
class ModelSpec:
    """A model the target serves, as the features see it."""

    name: str
    versions: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = ()
    generate: InputGenerator | None = None
    expected: ExpectedOutputs | None = None  # None: the harness cannot know the right answers
    tolerance: float = 1e-4  # absolute + relative tolerance when outputs are compared

    def rows(self, count: int = 1, seed: int = 0) -> dict[str, list[Any]]:
        """Valid input data for ``count`` rows, deterministic by ``seed``."""
        if self.generate is not None:
            return self.generate(count, seed)
        return {t.name: random_tensor(t, count, seed) for t in self.inputs}

    def request(self, count: int = 1, *, seed: int = 0, request_id: str | None = None) -> dict[str, Any]:
        """A V2 infer request body for ``count`` rows."""
        data = self.rows(count, seed)
        body: dict[str, Any] = {
            "inputs": [
                {
                    "name": t.name,
                    "shape": t.concrete_shape(count),
                    "datatype": t.datatype,
                    "data": data[t.name],
                }
                for t in self.inputs
            ]
        }
        if request_id is not None:
            body["id"] = request_id
        return body


def random_tensor(tensor: TensorSpec, rows: int, seed: int) -> list[Any]:
    """Plausible values for a tensor of any datatype (standard normals for floats)."""
    rng = random.Random(f"{tensor.name}:{rows}:{seed}")
    size = tensor.size(rows)
    if tensor.datatype.startswith("FP"):
        return [round(rng.gauss(0.0, 1.0), 4) for _ in range(size)]
    if tensor.datatype == "BOOL":
        return [rng.random() < 0.5 for _ in range(size)]
    if tensor.datatype == "BYTES":
        return [f"x{rng.randrange(1000)}" for _ in range(size)]
    return [rng.randrange(0, 10) for _ in range(size)]


def mismatches(
    expected: dict[str, Sequence[float]], outputs: list[dict[str, Any]], tolerance: float
) -> list[str]:
    """What differs between the expected outputs and a V2 answer's ``outputs`` (empty when they agree)."""
    by_name = {o.get("name"): o for o in outputs if isinstance(o, dict)}
    problems = []
    for name, want in expected.items():
        got = by_name.get(name)
        if got is None:
            problems.append(f"no output {name!r} (outputs: {sorted(map(str, by_name))})")
            continue
        data = list(_flatten(got.get("data", [])))
        if len(data) != len(want):
            problems.append(f"output {name!r} has {len(data)} values, expected {len(want)}")
            continue
        for i, (g, w) in enumerate(zip(data, want, strict=True)):
            try:
                if not math.isclose(float(g), float(w), rel_tol=tolerance, abs_tol=tolerance):
                    problems.append(f"output {name!r}[{i}] = {g}, expected {w:.6g}")
                    break
            except (TypeError, ValueError):
                problems.append(f"output {name!r}[{i}] = {g!r} is not a number")
                break
    return problems


def _flatten(data: Any) -> Any:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


# -- metrics -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricsSpec:
    """Where a target's Prometheus metrics are and what its request counter and latency histogram are
    called, with the names of their model / version / status labels."""

    url: str
    request_counter: str
    latency_histogram: str | None = None
    model_label: str | None = "model"  # None: the counter has no model label (count every path below)
    version_label: str | None = "version"
    status_label: str | None = "status"
    path_label: str | None = None  # a label naming the route, e.g. "/v2/models/{model_name}/infer"
    path_contains: str | None = None  # count only samples whose route contains this


# -- the target ----------------------------------------------------------------------------------------
class Target(abc.ABC):
    """One system under test for one scenario."""

    name: ClassVar[str] = "abstract"
    capabilities: ClassVar[frozenset[str]] = frozenset({"inference"})
    #: whether it runs on a backend the harness chose (False: a deployment someone else started)
    needs_backend: ClassVar[bool] = True
    #: Scenarios this server is known to fail because of a defect of its own, documented with evidence:
    #: ``{"<feature file stem>: <words of the scenario title>": "what the server does, where it is shown"}``.
    #: They run and are reported as expected failures (strict: one that starts passing fails the run), so
    #: a known upstream defect neither hides nor turns every run red.
    known_defects: ClassVar[dict[str, str]] = {}

    def __init__(self, world: World) -> None:
        self.world = world  # the scenario's World: its backend, scratch space, drivers, cleanups

    @property
    def backend(self) -> Backend | None:
        return self.world.backend

    @classmethod
    def images(cls) -> list[ImageRecipe]:
        """The Docker images its services run in (built before the first docker scenario)."""
        return []

    @classmethod
    def prepare(cls, backend: str, echo: Callable[[str], None]) -> None:
        """Session-wide set-up before the first scenario on ``backend`` (e.g. a venv), with progress."""
        return None

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def require(self, capability: str, step: str = "") -> None:
        if capability not in CAPABILITIES:
            raise TargetError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        if capability not in self.capabilities:
            raise CapabilityMissing(self.name, capability, step)

    # -- models --------------------------------------------------------------------------------
    @abc.abstractmethod
    def model(self, name: str) -> ModelSpec:
        """The model ``name`` as the target serves it (raise :class:`TargetError` naming the known ones)."""

    @abc.abstractmethod
    def prepare_models(self, model: str, versions: Sequence[str]) -> None:
        """Make ``versions`` of ``model`` available to serve (build artifacts where the target builds
        them; check they exist where it does not). Raises :class:`TargetError`."""

    # -- serving ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def serve(self, model: str, version: str, **options: Any) -> None:
        """Start serving ``model`` with ``version`` loaded (for an external target: check that it does,
        and that the deployment answers). Returns once the target says it is ready."""

    @property
    @abc.abstractmethod
    def inference_url(self) -> str:
        """The base URL of the V2 front door."""

    #: the backend service behind ``inference_url`` (None: a deployment the harness did not start)
    inference_service: ClassVar[str | None] = None

    def headers(self) -> dict[str, str]:
        """Headers every request to the target carries (an external deployment's credentials)."""
        return {}

    def metrics(self) -> MetricsSpec:
        self.require("metrics")
        raise TargetError(f"{self.name} declares metrics but says nowhere where they are")

    def load_version(self, model: str, version: str) -> Any:
        """Repository capability: make ``version`` the loaded version of ``model``; the answer."""
        self.require("repository")
        raise TargetError(f"{self.name} declares a repository but cannot load versions")

    def unload(self, model: str, version: str | None = None) -> Any:
        self.require("repository")
        raise TargetError(f"{self.name} declares a repository but cannot unload")

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """Lifecycle: a fresh process for service ``name`` (its environment changed by ``env``), returning
        once it is back in the state the target promises (a worker registered again, a server ready)."""
        self.require("lifecycle")
        assert self.backend is not None
        self.backend.restart(name, env)

    def describe(self) -> str:
        return self.name

    def teardown(self) -> None:
        """Release what the target holds besides the backend's services. Never raises."""
        return None
