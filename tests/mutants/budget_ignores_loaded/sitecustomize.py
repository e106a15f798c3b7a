"""Mutant: a worker's memory budget judges each load alone, ignoring the models it already holds (two
models that each fit, but not together, are both accepted)."""

from sut.worker.model_store import ModelStore

_original_load = ModelStore.load


def _load_judged_alone(self, model, version, uri, sha256=None):
    budget = self.memory_budget
    if budget:
        with self._lock:
            held = sum(lv.size_bytes for vs in self._serving.values() for lv in vs.values())
            held += sum(lv.size_bytes for lv in self._retiring)
        self.memory_budget = budget + held  # what is held no longer counts against the budget
    try:
        return _original_load(self, model, version, uri, sha256)
    finally:
        self.memory_budget = budget


ModelStore.load = _load_judged_alone
