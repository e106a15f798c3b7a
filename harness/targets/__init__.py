"""Choosing a target: by name (``--target reference|mlserver``, or one a package registers under the
``servingbdd.targets`` entry-point group) or by a profile of an external deployment
(``--target-profile FILE``, or ``[tool.servingbdd.target]`` in the project's pyproject.toml)."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path

from harness.targets.base import CAPABILITIES, CapabilityMissing, Target, TargetError
from harness.targets.profile import ProfileError, load_profile

__all__ = ["BUILT_IN", "CAPABILITIES", "CapabilityMissing", "Target", "TargetError", "resolve"]

#: name -> "module:Class"; imported only when chosen (MLServer's module needs nothing of ours at import)
BUILT_IN = {
    "reference": "harness.targets.reference:ReferenceTarget",
    "mlserver": "harness.targets.mlserver:MLServerTarget",
}
ENTRY_POINT_GROUP = "servingbdd.targets"


def known_targets() -> dict[str, str]:
    found = dict(BUILT_IN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def resolve(name: str | None, profile: str | None, *, rootdir: Path | None = None) -> type[Target]:
    """The target class for ``--target NAME`` / ``--target-profile FILE``; :class:`TargetError` or
    :class:`ProfileError` (one line) when it cannot be had."""
    if profile:
        from harness.targets.external import external_target

        return external_target(load_profile(Path(profile)))
    if name in (None, "", "auto"):
        pyproject = (rootdir or Path.cwd()) / "pyproject.toml"
        if pyproject.is_file() and _has_target_table(pyproject):
            from harness.targets.external import external_target

            return external_target(load_profile(pyproject, table=("tool", "servingbdd", "target")))
        name = "reference"
    targets = known_targets()
    if name not in targets:
        raise TargetError(
            f"unknown target {name!r}; known: {', '.join(sorted(targets))} (or --target-profile FILE)"
        )
    module, _, attribute = targets[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise TargetError(f"target {name!r} ({targets[name]}) cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise TargetError(f"target {name!r} ({targets[name]}) is not a harness.targets.base.Target")
    return cls


def _has_target_table(pyproject: Path) -> bool:
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool", {}).get("servingbdd", {}).get("target"), dict)


__all__ += ["ProfileError"]
