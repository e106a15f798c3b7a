"""Mutant: the gateway dies when it finds its catalog database damaged (no fallback to memory, no repair)."""

import logging
import os

from sut.gateway.catalog_recovery import StoreGuard


def _die_on_damage(self, problem, context):
    logging.getLogger("sut.gateway.catalog").critical("catalog database corrupt: %s: exiting", problem)
    os._exit(70)


StoreGuard._mark_damaged = _die_on_damage
