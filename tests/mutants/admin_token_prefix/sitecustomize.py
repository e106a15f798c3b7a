"""Mutant: the admin token check accepts any prefix of the token (a "starts with" comparison)."""


def _mutate(module: str, old: str, new: str) -> None:
    """Import ``module`` from its own source with ``old`` replaced by ``new`` (exactly one occurrence);
    a service whose source no longer has ``old`` exits at once, so a stale mutant cannot pass silently."""
    import importlib.util
    import os
    import sys

    spec = importlib.util.find_spec(module)
    source = spec.loader.get_source(module)
    if source.count(old) != 1:
        sys.stderr.write(f"mutant: {old!r} is not once in {module}: update the mutant\n")
        os._exit(97)
    mutated = importlib.util.module_from_spec(spec)
    sys.modules[module] = mutated
    exec(compile(source.replace(old, new), spec.origin, "exec"), mutated.__dict__)
    parent, _, child = module.rpartition(".")
    setattr(sys.modules[parent], child, mutated)


_mutate(
    "sut.gateway.auth",
    "return same(digest(token), gw.admin_digest)",
    "return bool(token.strip()) and gw.config.admin_token.startswith(token.strip())",
)
