"""What a call of the runner's own libraries does when the scan meets it: a step registration with its
parser and pattern, a custom or cucumber type, a step matcher, a pytest-bdd binding (mixed into the
scan's :class:`.pyscan.Evaluator`)."""

from __future__ import annotations

import ast
import functools
import importlib
from typing import Any

from .model import Pattern, StepFunction
from .pyscan_model import Binding
from .pysource import qualified
from .pyvalues import (
    UNKNOWN,
    FuncRef,
    ImportRef,
    ParserSpec,
    PartialRef,
    PatternMarker,
    Registrar,
    RegistryObject,
    TypeRegistrar,
    _PatternHolder,
)

#: Libraries whose converters may be imported to read their ``pattern`` (runner code, not test code).
_IMPORTABLE = ("behave.", "parse_type.", "parse.")


class Registrations:
    """The registration half of :class:`.pyscan.Evaluator` (mixed into it): reads ``self.module``,
    ``self.rules``, ``self.state`` and ``self.discovery``."""

    def _keyword_of(self, name: str) -> str | None:
        if name in self.rules.registrations:
            return self.rules.registrations[name]
        for module in self.rules.registry_modules:
            if name.startswith(module + "."):
                last = name.rsplit(".", 1)[-1]
                if last in ("given", "when", "then", "step") and name.count(".") > module.count(".") + 1:
                    return last
        return None

    def _library_call(
        self, name: str, args: list[Any], kwargs: dict[str, Any], line: int, node: ast.AST
    ) -> Any:
        rules = self.rules
        if name in ("functools.partial",) and args:
            return PartialRef(args[0], args[1:], kwargs)
        keyword = self._keyword_of(name)
        if keyword is not None:
            pattern = (
                args[0]
                if args
                else kwargs.get("name", kwargs.get("pattern", kwargs.get("step_text", UNKNOWN)))
            )
            extra = {k: v for k, v in kwargs.items() if k not in ("name", "pattern", "step_text")}
            if len(args) > 1 and rules.family == "pytest_bdd":
                extra.setdefault("converters", args[1])
            return Registrar(rules.family, keyword, pattern, line, extra)
        if name in rules.parsers:
            types = self._types(kwargs.get("extra_types", args[1] if len(args) > 1 else {}))
            return ParserSpec(rules.parsers[name], args[0] if args else kwargs.get("name", UNKNOWN), types)
        if name in rules.use_matcher:
            value = args[0] if args else kwargs.get("name", UNKNOWN)
            if isinstance(value, str):
                self.state.matcher = value
            elif isinstance(value, ImportRef):  # use_step_matcher(SomeMatcherClass)
                self.state.matcher = value.qualname
            return None
        if name in rules.cucumber_matcher:
            self.state.matcher = "cucumber"
            return None
        if name in rules.register_type:
            self.discovery.types.update(self._types(kwargs))
            return None
        if name in rules.define_parameter_type:
            self._parameter_type(args, kwargs)
            return None
        if name in rules.type_decorators:
            return TypeRegistrar(args[0] if args else UNKNOWN)
        if name in ("parse.with_pattern", "parse_type.with_pattern"):
            return PatternMarker(args[0] if args else UNKNOWN)
        if name in rules.bindings:
            self._binding(rules.bindings[name], args, kwargs, line)
            return UNKNOWN
        for module in rules.registry_modules:
            if name.startswith(module + ".") and name.rsplit(".", 1)[-1] == "StepRegistry":
                return RegistryObject(name)
        if name.startswith(("parse_type.TypeBuilder", "behave.cucumber_expression.TypeBuilder")):
            return self._type_builder(name, args, kwargs)
        return UNKNOWN

    def _binding(self, kind: str, args: list[Any], kwargs: dict[str, Any], line: int) -> None:
        base = kwargs.get("features_base_dir")
        base = base if isinstance(base, str) else None
        if kind == "scenarios":
            paths = [a for a in args if isinstance(a, str)]
            self.discovery.bindings.append(Binding(self.module.display, paths, None, base, line))
        else:
            feature = args[0] if args else kwargs.get("feature_name")
            name = args[1] if len(args) > 1 else kwargs.get("scenario_name")
            if isinstance(feature, str) and isinstance(name, str):
                self.discovery.bindings.append(Binding(self.module.display, [feature], name, base, line))

    def _type_builder(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run parse_type's TypeBuilder (pure library code) on stand-in converters, for its pattern."""
        from .matching import stand_in

        def real(value: Any) -> Any:
            if isinstance(value, FuncRef | _PatternHolder):
                return stand_in(value.type_pattern)
            if isinstance(value, list | tuple):
                return type(value)(real(v) for v in value)
            return value

        if UNKNOWN in args or UNKNOWN in kwargs.values():
            return UNKNOWN
        try:
            module_name, attr = name.rsplit(".", 1)
            builder = importlib.import_module(module_name.rsplit(".", 1)[0]).TypeBuilder
            made = getattr(builder, attr)(*[real(a) for a in args], **{k: real(v) for k, v in kwargs.items()})
        except Exception:
            return UNKNOWN
        return _PatternHolder(getattr(made, "pattern", None))

    def _parameter_type(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        name = kwargs.get("name", args[0] if args else UNKNOWN)
        regexp = kwargs.get("regexp", args[1] if len(args) > 1 else UNKNOWN)
        if isinstance(name, str) and isinstance(regexp, str):
            self.discovery.cucumber_types[name] = regexp

    def _types(self, value: Any) -> dict[str, str | None]:
        if not isinstance(value, dict):
            return {}
        return {str(k): self._converter_pattern(v) for k, v in value.items() if isinstance(k, str)}

    def _converter_pattern(self, value: Any) -> str | None:
        if isinstance(value, FuncRef | _PatternHolder):
            return value.type_pattern
        if not isinstance(value, ImportRef):
            return None
        module_name, _, attr = value.qualname.rpartition(".")
        if value.qualname.startswith(_IMPORTABLE):
            try:
                return getattr(getattr(importlib.import_module(module_name), attr), "pattern", None)
            except Exception:
                return None
        found = self.state.constant(module_name, attr)  # a converter of another module of the suite
        return found.type_pattern if isinstance(found, FuncRef | _PatternHolder) else None

    def _apply(self, decorator: Any, target: Any) -> Any:
        if isinstance(decorator, PatternMarker) and isinstance(target, FuncRef):
            if isinstance(decorator.regex, str):
                target.type_pattern = decorator.regex
        elif isinstance(decorator, TypeRegistrar) and isinstance(decorator.name, str):
            self.discovery.types[decorator.name] = self._converter_pattern(target)
        elif isinstance(decorator, Registrar) and isinstance(target, FuncRef):
            self._register(decorator, target)
        return target

    def _register(self, reg: Registrar, ref: FuncRef) -> None:
        func = self.discovery.by_node.get(id(ref.node))
        if func is None:
            node = ref.node
            first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
            func = StepFunction(
                path=ref.module.display,
                name=getattr(node, "name", "<lambda>"),
                line=node.lineno,
                first_line=first,
                node=node,
                module=ref.module,
            )
            self.discovery.by_node[id(node)] = func
            self.discovery.functions.append(func)
        spec = reg.pattern
        if isinstance(spec, ParserSpec):
            parser, text, types = spec.kind, spec.text, spec.extra_types
        else:
            parser = self.state.matcher if reg.family == "behave" else self.rules.default_parser
            text, types = spec, {}
        text = text if isinstance(text, str) else None
        for p in func.patterns:
            if (p.text, p.keyword, p.parser, p.namespace) == (text, reg.keyword, parser, self.module.display):
                return
        func.patterns.append(
            Pattern(
                family=reg.family,
                keyword=reg.keyword,
                parser=parser,
                text=text,
                line=reg.line,
                extra_types=types,
                order=next(self.state.order),
                namespace=self.module.display,
                path=self.module.display,
                needs=_capabilities(reg.kwargs.get("needs")),
            )
        )
        target = reg.kwargs.get("target_fixture")
        if isinstance(target, str):
            func.patterns[-1].extra_types = {**types}
            func.target_fixture = target
        self.module.step_fixtures += 1

    def _registration_of(self, node: ast.AST) -> str | None:
        """A registration decorator whose pattern we could not evaluate still marks a step function."""
        target = node.func if isinstance(node, ast.Call) else node
        name = qualified(target, self.module.imports)
        if name is None and isinstance(target, ast.Name) and target.id in self.rules.injected:
            name = self.rules.injected[target.id]
        return self._keyword_of(name or "")


_ = functools  # functools.partial is recognised by name


def _capabilities(value: Any) -> tuple[str, ...]:
    """A ``needs=(...)`` keyword read statically: the capability names when they are string constants."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()
