"""Mutant: a worker releases the versions it serves *before* loading the new one (non-atomic swap).

Between the release and the end of the (deliberately slow) load the worker holds nothing for the model,
while the gateway still routes the production version to it.
"""

import time

from sut.worker.model_store import ModelStore

_original_load = ModelStore.load
SLOW_LOAD_S = 0.5


def _release_then_load(self, model, version, uri, sha256=None):
    others = [lv.version for lv in self.loaded() if lv.model == model and lv.version != version]
    for old in others:
        self.unload(model, old)
    if others:
        time.sleep(SLOW_LOAD_S)
    return _original_load(self, model, version, uri, sha256)


ModelStore.load = _release_then_load
