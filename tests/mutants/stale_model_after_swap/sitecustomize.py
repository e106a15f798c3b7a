"""Mutant: after a swap the worker keeps computing with the old model but labels answers with the new
version (the new version's entry reuses the session of the version it replaces)."""

from sut.worker.model_store import ModelStore

_original_build = ModelStore._build


def _build_reusing_old_session(self, model, version, uri, path, size, sha256, label):
    new = _original_build(self, model, version, uri, path, size, sha256, label)
    with self._lock:
        old = [lv for v, lv in self._serving.get(model, {}).items() if v != version and lv.session]
    if old:
        new.session = old[0].session  # same inputs and outputs: nothing but the numbers tell
    return new


ModelStore._build = _build_reusing_old_session
