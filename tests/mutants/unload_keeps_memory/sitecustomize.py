"""Mutant: an unload that keeps the memory (the worker says the version is gone, but its session leaks)."""

from sut.worker.model_store import ModelStore

_original_unload = ModelStore.unload
_leaked = []


def _unload_leaking(self, model, version, timeout=None):
    _leaked.extend(lv.session for lv in self.loaded() if lv.model == model and version in (None, lv.version))
    return _original_unload(self, model, version, timeout)


ModelStore.unload = _unload_leaking
