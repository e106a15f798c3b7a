"""Mutant: an unload drops the requests in flight: the gateway no longer waits for its requests on the
model, and a worker releases the model at once, failing the requests still running on it."""

from mutant_patch import mutate


def _worker_drops_in_flight() -> None:
    try:
        from sut.errors import Unavailable
        from sut.worker.model_store import LoadedVersion, ModelStore
    except ImportError:  # a service without onnxruntime (the gateway's image) holds no model
        return

    original_run, original_unload = LoadedVersion.run, ModelStore.unload

    def run(self, feeds, output_names):
        outputs = original_run(self, feeds, output_names)
        if getattr(self, "dropped", False):
            raise Unavailable(f"model '{self.model}' version '{self.version}' was unloaded")
        return outputs

    def unload(self, model, version, timeout=None):
        with self._lock:
            held = self._serving.get(model, {})
            for lv in [held[version]] if version in held else [] if version else held.values():
                lv.dropped = True
        return original_unload(self, model, version, 0.0)  # release now, whoever still runs it

    LoadedVersion.run, ModelStore.unload = run, unload


mutate(
    "sut.gateway.swap",
    "                await self.router.in_flight.wait_idle((model, version), self.drain_timeout)\n",
    "",
)
_worker_drops_in_flight()
