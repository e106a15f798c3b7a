"""Mutant: a worker answers an unload of one version with success but keeps it loaded (old versions pile
up after every swap; the worker still lists them and reports them in its heartbeats)."""

from sut.worker.model_store import ModelStore

_original_unload = ModelStore.unload


def _unload_only_everything(self, model, version, timeout=None):
    if version is None:
        return _original_unload(self, model, version, timeout)
    with self._lock:
        if version not in self._serving.get(model, {}):
            return _original_unload(self, model, version, timeout)  # its own 404
    return [version]  # "unloaded", yet still serving


ModelStore.unload = _unload_only_everything
