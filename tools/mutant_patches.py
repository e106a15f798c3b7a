"""Find stale mutants without starting a service: a patch that no longer fits the code it replaces.

A mutant (``tests/mutants/<name>/sitecustomize.py``) replaces functions of ``sut`` or re-imports a
module with one line changed. When ``sut`` moves on, a mutant can decay: a wrapper that no longer takes
the arguments its callers pass breaks the service with a TypeError, so the scenario fails before the step
that should see the defect. CI runs only the fast cases, so the slow ones could decay unnoticed; this
check covers every mutant in about a second.

For each mutant, in one process: import every ``sut`` module, snapshot its functions (and those of its
classes), import the mutant, and require that each replaced function accepts every call the original
accepts (all its parameters positionally, and by name where the original allows). A ``mutate(module,
old, new)`` must find ``old`` exactly once and the edited source must compile. Everything a mutant
replaced is put back before the next one.

Run from the repository's root; it prints each stale mutant, and exits 1 if there is one:

    python -m tools.mutant_patches
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.mutation_score import MUTANTS, SHARED

# (owner, attribute name) -> the object found there: owner is a module or a class of sut.
Snapshot = dict[tuple[Any, str], Any]


def _sut_modules() -> list[ModuleType]:
    import sut

    modules = [sut]
    for info in pkgutil.walk_packages(sut.__path__, "sut."):
        if info.name.rsplit(".", 1)[-1] == "__main__":  # entry points: importing one starts a service
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _callable_of(value: Any) -> Callable[..., Any] | None:
    """The function behind a class or module attribute (unwrapping static and class methods)."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    return value if inspect.isfunction(value) else None


def snapshot(modules: list[ModuleType]) -> Snapshot:
    found: Snapshot = {}
    for module in modules:
        for name, value in list(vars(module).items()):
            if _callable_of(value) is not None:
                found[(module, name)] = value
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                for attr, member in vars(value).items():
                    if _callable_of(member) is not None or isinstance(member, property):
                        found[(value, attr)] = member
    return found


def _calls(signature: inspect.Signature) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Two calls the signature accepts: every parameter by position where it can be, and every
    parameter by name where it can be."""
    params = list(signature.parameters.values())
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword_only = {p.name: p.name for p in params if p.kind is p.KEYWORD_ONLY}
    yield positional, keyword_only
    only_positional = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
    by_name = {p.name: p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    yield only_positional, by_name


def incompatibility(original: Any, replacement: Any) -> str | None:
    """Why ``replacement`` cannot stand where ``original`` is called, or None when it can."""
    if isinstance(original, property) or isinstance(replacement, property):
        return None  # read as an attribute: no arguments to get wrong
    old, new = _callable_of(original), _callable_of(replacement)
    if old is None or new is None:
        return None
    old_sig, new_sig = inspect.signature(old), inspect.signature(new)
    kinds = {p.kind for p in new_sig.parameters.values()}
    for p in old_sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.kind not in kinds:
            stars = "*" if p.kind is p.VAR_POSITIONAL else "**"
            return f"the original takes {stars}{p.name}, the patch does not"
    for args, kwargs in _calls(old_sig):
        try:
            new_sig.bind(*args, **kwargs)
        except TypeError as error:
            return f"a call the original {old_sig} accepts fails on the patch {new_sig}: {error}"
    return None


@functools.cache
def _shared_patch_module() -> ModuleType:
    """``mutant_patch`` as mutants import it, its ``mutate`` checking the edit instead of applying it."""
    spec = importlib.util.spec_from_file_location("mutant_patch", SHARED / "mutant_patch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def check_edit(name: str, old: str, new: str) -> None:
        source, edited = module.edited_source(name, old, new)
        compile(source, edited.origin, "exec")

    module.mutate = check_edit
    return module


def check(directory: Path, before: Snapshot) -> list[str]:
    """What is stale in the mutant at ``directory``; every replaced attribute is restored afterwards."""
    problems: list[str] = []
    saved_shared = sys.modules.get("mutant_patch")
    sys.modules["mutant_patch"] = _shared_patch_module()
    name = f"_mutant_{directory.name}"
    try:
        spec = importlib.util.spec_from_file_location(name, directory / "sitecustomize.py")
        assert spec is not None and spec.loader is not None
        try:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except Exception as error:  # any failure to apply is what this check reports
            problems.append(f"{type(error).__name__}: {error}")
        for (owner, attr), original in before.items():
            current = vars(owner).get(attr)
            if current is original:
                continue
            why = incompatibility(original, current)
            if why:
                problems.append(f"{getattr(owner, '__qualname__', owner.__name__)}.{attr}: {why}")
            setattr(owner, attr, original)
    finally:
        sys.modules.pop(name, None)
        if saved_shared is None:
            sys.modules.pop("mutant_patch", None)
        else:
            sys.modules["mutant_patch"] = saved_shared
    return problems


def _on_disk() -> list[Path]:
    return sorted(p.parent for p in MUTANTS.glob("*/sitecustomize.py"))


def stale_mutants(directories: list[Path] | None = None) -> dict[str, list[str]]:
    """Each stale mutant's name and what is wrong with it."""
    before = snapshot(_sut_modules())
    chosen = directories or _on_disk()
    return {d.name: problems for d in chosen if (problems := check(d, before))}


def main() -> int:
    stale = stale_mutants()
    for name, problems in stale.items():
        for problem in problems:
            print(f"{name}: {problem}")
    total = len(_on_disk())
    print(f"{total - len(stale)}/{total} mutants fit the code they patch")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
