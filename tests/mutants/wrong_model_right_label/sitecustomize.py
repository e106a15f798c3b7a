"""Mutant: a worker computes every answer with the model version it loaded first, whatever version the
request names, and labels the answer with the version asked for (the wrong model under the right label)."""

from sut.worker.model_store import ModelStore

_original_acquire = ModelStore.acquire


def _acquire_first_loaded(self, model, version):
    loaded = sorted((lv for lv in self.loaded() if lv.model == model), key=lambda lv: lv.loaded_at)
    if version is None or not loaded or all(lv.version != version for lv in loaded):
        return _original_acquire(self, model, version)
    first, named = loaded[0], next(lv for lv in loaded if lv.version == version)
    named.session, named.inputs, named.outputs = first.session, first.inputs, first.outputs  # shared session
    return _original_acquire(self, model, version)


ModelStore.acquire = _acquire_first_loaded
