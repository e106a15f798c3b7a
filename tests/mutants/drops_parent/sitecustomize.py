"""Mutant: lineage that drops the parent (a version registered with a parent is stored without one)."""

from sut.gateway.catalog import Catalog

_original_register = Catalog.register_version


async def _register_without_parent(self, model, version, artifact_uri, parent_version):
    return await _original_register(self, model, version, artifact_uri, None)


Catalog.register_version = _register_without_parent
