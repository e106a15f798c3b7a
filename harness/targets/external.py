"""A deployment the harness did not start (a staging URL), described by a profile (:mod:`.profile`).

It offers what its profile declares among inference, the repository extension and metrics: nothing that
needs the harness to run the services (no lifecycle, no faults). "Serving" a model means checking that
the deployment answers and reports the model version ready; nothing is started or reset, so scenarios
must not depend on state a previous scenario left (the protocol features do not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from harness.targets.base import MetricsSpec, ModelSpec, Target, TargetError
from harness.targets.profile import Profile

if TYPE_CHECKING:
    from harness.world import World


class ExternalTarget(Target):
    name = "external"
    needs_backend = False
    profile: ClassVar[Profile]  # set by :func:`external_target` (one class per profile)

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.verify = self.profile.tls()
        self.timeout = self.profile.timeout_s

    def model(self, name: str) -> ModelSpec:
        try:
            return self.profile.models[name]
        except KeyError:
            known = sorted(self.profile.models)
            raise TargetError(
                f"the profile {self.profile.source} declares no model {name!r} (models: {known})"
            ) from None

    def prepare_models(self, model: str, versions: Sequence[str]) -> None:
        missing = [v for v in versions if v not in self.model(model).versions]
        if missing:
            raise TargetError(
                f"the profile {self.profile.source} declares no versions {missing} of {model} "
                f"(declared: {list(self.model(model).versions)})"
            )

    def serve(self, model: str, version: str, **options: Any) -> None:
        """Check that the deployment serves ``version``; with the repository capability, first make it the
        loaded version (the reset between scenarios: an earlier one may have loaded or unloaded another)."""
        if options:
            raise TargetError(f"an external deployment takes no start options (got {sorted(options)})")
        self.prepare_models(model, [version])
        if self.has("repository"):
            loaded = self.load_version(model, version)
            if not loaded.ok:
                raise TargetError(
                    f"{self.profile.url} did not load {model} version {version} "
                    f"({loaded.status or 'no answer'}: {loaded.error or loaded.body!r})"
                )
        ready = self.world.v2.model_ready(model, version)
        if not ready.ok:
            raise TargetError(
                f"{self.profile.url} does not report {model} version {version} ready "
                f"({ready.status or 'no answer'}: {ready.error or ready.body!r})"
            )

    @property
    def inference_url(self) -> str:
        return self.profile.url

    def headers(self) -> dict[str, str]:
        return dict(self.profile.headers)

    def metrics(self) -> MetricsSpec:
        self.require("metrics")
        assert self.profile.metrics is not None
        return self.profile.metrics

    def load_version(self, model: str, version: str) -> Any:
        """Repository extension: ``POST /v2/repository/models/{model}/load`` naming the version."""
        self.require("repository")
        body = {"parameters": {"version": version}}
        return self.world.v2.call("POST", f"/v2/repository/models/{model}/load", json=body, timeout=120.0)

    def unload(self, model: str, version: str | None = None) -> Any:
        self.require("repository")
        body = {"parameters": {"version": version}} if version else {}
        return self.world.v2.call("POST", f"/v2/repository/models/{model}/unload", json=body)

    def describe(self) -> str:
        return f"external deployment at {self.profile.url} ({self.profile.source})"


def external_target(profile: Profile) -> type[ExternalTarget]:
    """A target class bound to ``profile``."""
    return type(
        "ExternalTarget", (ExternalTarget,), {"profile": profile, "capabilities": profile.capabilities}
    )
