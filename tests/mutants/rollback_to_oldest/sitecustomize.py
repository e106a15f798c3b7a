"""Mutant: a rollback goes back to the first version that was ever replaced in production, not to the one
the last swap replaced (right with two versions, wrong with three)."""

from sut.gateway.catalog import PRODUCTION, Catalog


def _oldest_previous(self, model):
    for change in self.get_model(model).history:
        if change.alias == PRODUCTION and change.from_version is not None:
            return change.from_version
    return None


Catalog.previous_production = _oldest_previous
