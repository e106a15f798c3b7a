"""Mutant: the gateway derives a worker's id from its address, so a restarted worker gets its old id."""

from sut.gateway.registry import Worker, WorkerRegistry


def _register_by_address(self, url, name, models):
    worker_id = "w-" + url.rstrip("/").rsplit(":", 1)[-1]
    worker = Worker(id=worker_id, url=url.rstrip("/"), name=name, models=set(models))
    self.workers[worker.id] = worker
    return worker


WorkerRegistry.register = _register_by_address
