"""Lineage of model versions: each version may name its parent (``parent_version``, checked when it is
registered: an unknown parent is refused), which makes the versions of a model a forest. This module
answers the questions asked of it: a version's ancestors (nearest first) and descendants (breadth first).
"""

from __future__ import annotations

from typing import Any

from sut.gateway.catalog import ModelEntry


def ancestors(entry: ModelEntry, version: str) -> list[str]:
    out: list[str] = []
    parent = entry.versions[version].parent_version
    while parent is not None and parent in entry.versions and parent not in out:  # no loop, even if damaged
        out.append(parent)
        parent = entry.versions[parent].parent_version
    return out


def children(entry: ModelEntry, version: str) -> list[str]:
    return [v for v, rec in entry.versions.items() if rec.parent_version == version]


def descendants(entry: ModelEntry, version: str) -> list[str]:
    out: list[str] = []
    queue = children(entry, version)
    while queue:
        current = queue.pop(0)
        if current in out:
            continue
        out.append(current)
        queue += children(entry, current)
    return out


def lineage(entry: ModelEntry, version: str) -> dict[str, Any]:
    return {
        "model": entry.name,
        "version": version,
        "parent": entry.versions[version].parent_version,
        "ancestors": ancestors(entry, version),
        "children": children(entry, version),
        "descendants": descendants(entry, version),
    }
