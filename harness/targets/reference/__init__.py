"""The reference cluster (``sut/``) as a target: a gateway over workers, a catalog, a trainer.

This package is the only part of ``harness/`` that knows the reference cluster (and imports ``sut``):
its services (:mod:`.services`), its start order and registrations (:mod:`.cluster`), the plumbing its
start-up asks of the gateway (:mod:`.admin`), its models and their right answers (:mod:`.models`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.targets.base import CAPABILITIES, MetricsSpec, ModelSpec, Target, TargetError
from harness.targets.reference.cluster import ReferenceCluster
from harness.targets.reference.models import model_spec
from harness.targets.reference.spec import ClusterSpec, TrainerSpec

if TYPE_CHECKING:
    from harness.world import World

__all__ = ["ClusterSpec", "ReferenceCluster", "ReferenceTarget", "TrainerSpec"]

DEFAULT_ADMIN_TOKEN = ClusterSpec().admin_token


class ReferenceTarget(Target):
    name = "reference"
    capabilities = frozenset(CAPABILITIES)  # all of them: the harness's own cluster

    def __init__(self, world: World) -> None:
        super().__init__(world)
        assert world.backend is not None
        self.cluster = ReferenceCluster(world.backend)

    @classmethod
    def images(cls) -> list[Any]:
        from harness.targets.reference.services import IMAGES

        return list(IMAGES.values())  # the trainer's too: drift scenarios use it

    @property
    def artifact_root(self) -> Path:
        """Where the scenario's artifacts are built (the started cluster's own root, once it runs)."""
        started = self.cluster.spec.artifact_root if self.cluster.spec is not None else None
        return Path(started) if started is not None else self.world.workdir / "artifacts"

    # -- models --------------------------------------------------------------------------------
    def model(self, name: str) -> ModelSpec:
        spec = model_spec(self.artifact_root, name)
        if not spec.versions:
            built = (
                sorted(p.name for p in self.artifact_root.iterdir()) if self.artifact_root.is_dir() else []
            )
            raise TargetError(
                f"no artifacts of model {name!r} were built in this scenario (built: {built or 'none'}); "
                f"add a step like 'Given the {name} model with versions \"1\"'"
            )
        return spec

    def prepare_models(self, model: str, versions: Sequence[str]) -> None:
        from fixtures.models import demo_versions
        from sut.demo_models import DEMO_MODEL

        if model != DEMO_MODEL:
            raise TargetError(f"the reference target builds the {DEMO_MODEL!r} model only, not {model!r}")
        for version, artifact in demo_versions(self.artifact_root, tuple(versions)).items():
            self.world.artifacts[(model, version)] = artifact

    # -- serving ---------------------------------------------------------------------------------
    def serve(self, model: str, version: str, **options: Any) -> None:
        """A cluster of ``options.get("workers", 1)`` workers serving ``model`` ``version``."""
        artifact = self.world.artifacts.get((model, version))
        if artifact is None:
            raise TargetError(
                f"no artifact for {model} version {version!r}: add a step like "
                f"'Given the {model} model with versions \"{version}\"' before starting the cluster"
            )
        spec = ClusterSpec(
            artifact_root=self.artifact_root, preload=[(model, version, artifact.artifact_uri)], **options
        )
        self.start_cluster(spec)

    def start_cluster(self, spec: ClusterSpec) -> None:
        self.world.defer("tear down the cluster", self.cluster.teardown)
        self.cluster.start(spec)

    inference_service = "gateway"

    @property
    def inference_url(self) -> str:
        return self.cluster.gateway_url

    @property
    def admin_token(self) -> str:
        return self.cluster.spec.admin_token if self.cluster.spec else DEFAULT_ADMIN_TOKEN

    def metrics(self) -> MetricsSpec:
        return MetricsSpec(
            url=self.cluster.gateway_url + "/metrics",
            request_counter="sut_requests_total",
            latency_histogram="sut_request_latency_seconds",
        )

    def load_version(self, model: str, version: str) -> Any:
        """``POST /v2/repository/models/{m}/load`` on the gateway (behind the admin token): a hot swap on
        every worker, or a reload after an unload. A version the catalog does not know yet is registered
        first, from the artifact built for it."""
        gateway = self.world.gateway
        known = {str(v.get("version")) for v in gateway.versions(model)}
        if version not in known:
            artifact = self.world.artifacts.get((model, version))
            if artifact is None:
                raise TargetError(f"no artifact for {model} version {version!r} to register")
            registered = gateway.register_version(model, artifact.artifact_uri, version=version)
            if not registered.ok:
                return registered
        body = {"parameters": {"version": version}}
        return gateway.admin_call("POST", f"/v2/repository/models/{model}/load", json=body, timeout=120.0)

    def unload(self, model: str, version: str | None = None) -> Any:
        """``POST /v2/repository/models/{m}/unload`` on the gateway: every version, after its in-flight
        requests."""
        return self.world.gateway.admin_call(
            "POST", f"/v2/repository/models/{model}/unload", json={}, timeout=120.0
        )

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> None:
        self.cluster.restart(name, env)

    def describe(self) -> str:
        return f"reference cluster ({self.world.backend.name if self.world.backend else '?'} backend)"

    def teardown(self) -> None:
        self.cluster.teardown()
