"""What several mutants share: importing a module of the cluster from its own source with one edit.

On the services' ``PYTHONPATH`` after the mutant's own directory (``tools/mutation_score.py`` puts it
there), so a mutant's ``sitecustomize.py`` says ``from mutant_patch import mutate``.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def mutate(module: str, old: str, new: str) -> None:
    """Import ``module`` from its own source with ``old`` replaced by ``new`` (exactly one occurrence);
    a service whose source no longer has ``old`` exits at once, so a stale mutant cannot pass silently."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.loader is not None and spec.origin is not None, module
    source = spec.loader.get_source(module)  # type: ignore[attr-defined]
    if source.count(old) != 1:
        sys.stderr.write(f"mutant: {old!r} is not once in {module}: update the mutant\n")
        os._exit(97)
    mutated = importlib.util.module_from_spec(spec)
    sys.modules[module] = mutated
    exec(compile(source.replace(old, new), spec.origin, "exec"), mutated.__dict__)
    parent, _, child = module.rpartition(".")
    setattr(sys.modules[parent], child, mutated)
