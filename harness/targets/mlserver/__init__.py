"""MLServer (the open-source V2 server, with its scikit-learn runtime) as a target.

One service, ``mlserver``, started on the scenario's backend: ``mlserver start <repository>`` from its own
venv (:mod:`.env`) as a local process, or the offline image (:mod:`.image`) with the repository
bind-mounted read-only on docker. The repository (:mod:`.repository`) holds joblib models built by
:mod:`fixtures.sklearn_models`, whose right answers the test process computes from the same files.

What it offers: V2 inference, the repository extension (a version is loaded by rewriting its settings file
and asking the server to load), its own Prometheus metrics, restarts and memory figures of its process.
What it lacks: the reference cluster's admin API, workers, faultable links, a catalog and a trainer.
Scenarios it fails because of its own defects are listed in :attr:`MLServerTarget.known_defects`, with
the evidence in ``docs/mlserver.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.backends.base import Mount, Placement, ServiceSpec
from harness.targets.base import MetricsSpec, ModelSpec, Target, TargetError, TensorSpec
from harness.waiting import WaitTimeout, until

if TYPE_CHECKING:
    from harness.docker_images import ImageRecipe
    from harness.world import World

SERVICE = "mlserver"
STATE_IN_CONTAINER = "/tmp/mlserver-state"  # the repository is read-only there
READY_TIMEOUT_S = 60.0


class MLServerTarget(Target):
    name = "mlserver"
    capabilities = frozenset({"inference", "repository", "metrics", "lifecycle", "memory"})
    known_defects = {
        "protocol_inference: A request with a shape that does not match its data": (
            "MLServer 1.7.1 answers 500 'Internal Server Error' (log: ValueError: cannot reshape array of "
            "size 12 into shape (3,3)) instead of a 4xx; docs/mlserver.md, 'Answers'"
        ),
        "protocol_inference: A request with text where numbers belong": (
            "MLServer 1.7.1 answers 500 'Internal Server Error' (log: ValueError: could not convert string "
            "to float) instead of a 4xx; docs/mlserver.md, 'Answers'"
        ),
        "protocol_readiness: An unloaded model is not ready": (
            "MLServer 1.7.1 answers GET /v2/health/ready with 200 while no model is loaded (ready = every "
            "registered model ready, vacuously true with none); docs/mlserver.md, 'Answers'"
        ),
    }

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.root = world.workdir / "mlserver-repository"
        self.state = world.workdir / "mlserver-state"

    @classmethod
    def images(cls) -> list[ImageRecipe]:
        from harness.targets.mlserver import image

        return [image.recipe()]

    @classmethod
    def prepare(cls, backend: str, echo: Callable[[str], None]) -> None:
        """Its own venv for local runs (made once, cached: about a minute cold)."""
        if backend == "local":
            from harness.targets.mlserver import env

            env.mlserver_executable(echo=echo)

    # -- models --------------------------------------------------------------------------------
    def model(self, name: str) -> ModelSpec:
        from fixtures import sklearn_models as sk

        directory = self.root / name
        versions = (
            tuple(sorted(p.name for p in directory.iterdir() if (p / sk.ARTIFACT_FILE).is_file()))
            if (directory.is_dir())
            else ()
        )
        if not versions:
            raise TargetError(
                f"no versions of model {name!r} were prepared for MLServer in this scenario; add a step like "
                f'\'Given the {name} model with versions "1" and "2"\''
            )

        def generate(rows: int, seed: int) -> dict[str, list[Any]]:
            return {sk.INPUT_NAME: [x for row in sk.valid_rows(rows, seed) for x in row]}

        def expected(version: str, inputs: dict[str, list[Any]]) -> dict[str, list[float]]:
            flat = inputs[sk.INPUT_NAME]
            rows = [flat[i : i + sk.FEATURES] for i in range(0, len(flat), sk.FEATURES)]
            path = self.root / sk.artifact_uri(version, name)
            if not path.is_file():
                raise TargetError(f"no artifact of {name} version {version} at {path}")
            return {sk.OUTPUT_NAME: sk.expected_outputs(path, rows)}

        return ModelSpec(
            name=name,
            versions=versions,
            inputs=(TensorSpec(sk.INPUT_NAME, sk.DATATYPE, (-1, sk.FEATURES)),),
            outputs=(TensorSpec(sk.OUTPUT_NAME, sk.DATATYPE, (-1, 1)),),
            generate=generate,
            expected=expected,
            tolerance=1e-9,
        )

    def prepare_models(self, model: str, versions: Sequence[str]) -> None:
        from fixtures import sklearn_models as sk

        unknown = [v for v in versions if v not in sk.VERSIONS]
        if unknown:
            raise TargetError(f"the MLServer fixtures build versions {list(sk.VERSIONS)} only, not {unknown}")
        sk.build_versions(self.root, versions, model=model)

    # -- serving ---------------------------------------------------------------------------------
    def serve(self, model: str, version: str, **options: Any) -> None:
        from harness.targets.mlserver import repository

        if options:
            raise TargetError(f"MLServer takes no cluster options (got {sorted(options)})")
        self.model(model)  # its versions were prepared
        repository.select_version(self.root, model, version)
        assert self.backend is not None
        self.backend.launch(self._service())
        self._await_model(model, version)

    def _service(self) -> ServiceSpec:
        from harness.targets.mlserver import image, repository

        root, state = self.root, self.state

        def command(p: Placement) -> list[str]:
            local = p.python != "python"  # in a container the image's python is "python"
            settings = repository.ServerSettings(
                http_port=p.port("http"),
                grpc_port=p.port("grpc"),
                metrics_port=p.port("metrics"),
                host=p.bind_host,
                state_dir=str(state) if local else STATE_IN_CONTAINER,
            )
            repository.write_server_settings(root, settings)  # read by the server at start
            if local:
                from harness.targets.mlserver import env

                return [str(env.mlserver_executable(echo=lambda _: None)), "start", str(root)]
            return ["mlserver", "start", image.MODELS_DIR]

        return ServiceSpec(
            SERVICE,
            "server",
            command,
            image=image.recipe(),
            ports={"http": image.HTTP_PORT, "grpc": image.GRPC_PORT, "metrics": image.METRICS_PORT},
            mounts=[Mount(root, image.MODELS_DIR, "ro")],
            startup_timeout=READY_TIMEOUT_S,
        )

    def _await_model(self, model: str, version: str | None = None) -> None:
        url = (
            self.inference_url
            + f"/v2/models/{model}"
            + (f"/versions/{version}" if version else "")
            + "/ready"
        )
        from harness.waiting import http_ok

        try:
            until(lambda: http_ok(url), timeout=READY_TIMEOUT_S, what=f"{url} to answer 200", interval=0.05)
        except WaitTimeout as exc:
            tail = "\n".join(self.backend.logs(SERVICE).splitlines()[-25:]) if self.backend else ""
            raise TargetError(f"{exc}; last lines of MLServer's log:\n{tail}") from None

    inference_service = SERVICE

    @property
    def inference_url(self) -> str:
        assert self.backend is not None
        return self.backend.url(SERVICE)

    def metrics(self) -> MetricsSpec:
        """MLServer's REST counter has no model label: it counts by route template, so the harness counts
        the inference routes (one model per scenario); statuses are in ``status_code``."""
        assert self.backend is not None
        return MetricsSpec(
            url=self.backend.url(SERVICE, "metrics") + "/metrics",
            request_counter="rest_server_requests",
            latency_histogram="rest_server_request_duration_seconds",
            model_label=None,
            version_label=None,
            status_label="status_code",
            path_label="path",
            path_contains="/infer",
        )

    def load_version(self, model: str, version: str) -> Any:
        """Rewrite the model's settings to ``version``, then ``POST /v2/repository/models/{m}/load``:
        MLServer loads the new version before it releases the old one."""
        from harness.targets.mlserver import repository

        repository.select_version(self.root, model, version)
        return self.world.v2.call("POST", f"/v2/repository/models/{model}/load", timeout=120.0)

    def unload(self, model: str, version: str | None = None) -> Any:
        """``POST /v2/repository/models/{m}/unload`` (every version: MLServer has no per-version unload)."""
        return self.world.v2.call("POST", f"/v2/repository/models/{model}/unload", timeout=120.0)

    def restart(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """A fresh server process; back once it is live and has loaded its models again."""
        assert self.backend is not None
        self.backend.restart(name, env)
        for settings in self.root.glob("*/model-settings.json"):
            self._await_model(settings.parent.name)

    def describe(self) -> str:
        return f"MLServer ({self.backend.name if self.backend else '?'} backend)"
