"""Mutant: an alert that fires but rolls back to the wrong version (the model's first version, not the one
production had before the failing release)."""

from sut.gateway.swap import SwapCoordinator

_original_rollback = SwapCoordinator.rollback


async def _rollback_to_first(self, model, *, actor="admin", reason=None):
    if actor != "alert":
        return await _original_rollback(self, model, actor=actor, reason=reason)
    first = next(iter(self.catalog.get_model(model).versions))
    return await self.swap(model, first, action="rollback", actor=actor, reason=reason)


SwapCoordinator.rollback = _rollback_to_first
