"""Corpus: a step library, imported (its steps register at the import)."""

import steplib.service_steps  # noqa: F401
