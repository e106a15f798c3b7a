"""What several mutants share: importing a module of the cluster from its own source with one edit.

On the services' ``PYTHONPATH`` after the mutant's own directory (``tools/mutation_score.py`` puts it
there), so a mutant's ``sitecustomize.py`` says ``from mutant_patch import mutate``.
``tools/mutant_patches.py`` checks every mutant's edit with :func:`edited_source`, without applying it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def edited_source(module: str, old: str, new: str) -> tuple[str, importlib.machinery.ModuleSpec]:
    """``module``'s source with ``old`` replaced by ``new``, and the module's spec; LookupError when
    ``old`` is not in it exactly once."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.loader is None or spec.origin is None:
        raise LookupError(f"no module {module}")
    source = spec.loader.get_source(module)  # type: ignore[attr-defined]
    if source.count(old) != 1:
        raise LookupError(f"{old!r} is not once in {module}: update the mutant")
    return source.replace(old, new), spec


def mutate(module: str, old: str, new: str) -> None:
    """Import ``module`` from its own source with ``old`` replaced by ``new`` (exactly one occurrence);
    a service whose source no longer has ``old`` exits at once, so a stale mutant cannot pass silently."""
    try:
        source, spec = edited_source(module, old, new)
    except LookupError as error:
        sys.stderr.write(f"mutant: {error}\n")
        os._exit(97)
    mutated = importlib.util.module_from_spec(spec)
    sys.modules[module] = mutated
    exec(compile(source, spec.origin, "exec"), mutated.__dict__)
    parent, _, child = module.rpartition(".")
    setattr(sys.modules[parent], child, mutated)
