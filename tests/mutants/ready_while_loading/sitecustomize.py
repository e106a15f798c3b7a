"""Mutant: the gateway reports itself ready as soon as a healthy worker is registered, whether or not
that worker holds a model yet (ready while nothing is loaded, or while its first load is running)."""

from mutant_patch import mutate

mutate(
    "sut.gateway.app",
    "serving = [w.id for w in gw.registry.workers.values() if w.healthy and w.models]",
    "serving = [w.id for w in gw.registry.workers.values() if w.healthy]",
)
