"""Mutant: the gateway derives a worker's id from its address, so a restarted worker gets its old id."""

import dataclasses

from sut.gateway.registry import WorkerRegistry

_register = WorkerRegistry.register


def _register_by_address(self, url, name, models, *args, **kwargs):
    # whatever else registration records stays as it is: only the id is the address's
    worker = _register(self, url, name, models, *args, **kwargs)
    del self.workers[worker.id]
    worker = dataclasses.replace(worker, id="w-" + url.rstrip("/").rsplit(":", 1)[-1])
    self.workers[worker.id] = worker
    return worker


WorkerRegistry.register = _register_by_address
