"""The values the scan's evaluator computes with: :data:`UNKNOWN`, and stand-ins for what a module's
top level would hold at import time (functions, imports, partials, parsers, registration decorators)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from .pysource import ModuleInfo


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"

    def __bool__(self) -> bool:
        raise TypeError("unknown truth value")


UNKNOWN: Any = _Unknown()


def known(value: Any) -> bool:
    return value is not UNKNOWN


@dataclass
class FuncRef:
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    module: ModuleInfo
    type_pattern: str | None = None


@dataclass
class ImportRef:
    qualname: str


@dataclass
class PartialRef:
    """``functools.partial(callee, *args, **kwargs)``."""

    callee: Any
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass
class ParserSpec:
    kind: str
    text: Any
    extra_types: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Registrar:
    family: str
    keyword: str
    pattern: Any
    line: int
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TypeRegistrar:
    name: Any


@dataclass
class PatternMarker:
    regex: Any


@dataclass
class RegistryObject:
    """An instance of the registry's ``StepRegistry`` class: its ``.given`` etc. register steps."""

    qualname: str


class _PatternHolder:
    def __init__(self, pattern: str | None) -> None:
        self.type_pattern = pattern
