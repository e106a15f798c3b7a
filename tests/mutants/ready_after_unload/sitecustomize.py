"""Mutant: the gateway's model readiness asks the catalog, not the workers: a model is "ready" while the
catalog knows its version, also after it was unloaded everywhere."""

from mutant_patch import mutate

mutate(
    "sut.gateway.app",
    "holders = [w.id for w in gw.registry.holders(model, resolved) if w.healthy]",
    "holders = [w.id for w in gw.registry.workers.values() if w.healthy]",
)
