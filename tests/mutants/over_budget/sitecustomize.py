"""Mutant: a worker loads past its memory budget (the budget is reported but never enforced)."""

from sut.worker.model_store import ModelStore

_original_load = ModelStore.load


def _load_ignoring_budget(self, model, version, uri, sha256=None):
    budget = self.memory_budget
    self.memory_budget = 0  # the check sees "unlimited"; /worker/status still shows the budget after
    try:
        return _original_load(self, model, version, uri, sha256)
    finally:
        self.memory_budget = budget


ModelStore.load = _load_ignoring_budget
