"""Cluster backends: one interface (:mod:`.base`), one module per technology."""
