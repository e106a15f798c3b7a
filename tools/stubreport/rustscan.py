"""Rust sources through tree-sitter: ``cucumber`` step functions, their patterns, the World's writers.

``#[given("literal")]`` (an exact match), ``#[when(expr = "...")]`` (a cucumber expression) and
``#[then(regex = r"...")]`` (a regex, searched unless anchored) on ``fn`` items, also spelled
``#[cucumber::given(...)]``; custom parameter types from ``#[param(name = ..., regex = ...)]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .model import Pattern, SourceError, StepFunction

KEYWORDS = ("given", "when", "then")


@cache
def parser() -> Any:
    import tree_sitter
    import tree_sitter_rust

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_rust.language()))


@dataclass
class RustModule:
    path: Path
    display: str
    crate: str
    source: bytes
    tree: Any
    functions: dict[str, list[Any]] = field(default_factory=dict)  # name -> function_item nodes
    impls: dict[str, dict[str, Any]] = field(default_factory=dict)  # type -> fn name -> function_item
    uses: dict[str, str] = field(default_factory=dict)  # local name -> full path (use declarations)

    @property
    def lines(self) -> list[str]:
        return self.source.decode("utf-8", "replace").splitlines()

    def text(self, node: Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def decode_string(node: Any, module: RustModule) -> str | None:
    raw = module.text(node)
    if node.type == "raw_string_literal":
        opening = re.match(r'b?r(#*)"', raw)
        if opening is None:
            return None
        return raw[opening.end() : len(raw) - 1 - len(opening.group(1))]
    if node.type != "string_literal":
        return None
    body = raw[raw.index('"') + 1 : -1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3 : end], 16)))
            i = end + 1
        elif nxt == "\n":
            i += 2
            while i < len(body) and body[i] in " \t\n\r":
                i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _attribute(node: Any, module: RustModule) -> tuple[str, str, str | None] | None:
    """``(keyword, parser, text)`` for a step attribute; None for any other attribute."""
    attr = next((c for c in node.children if c.type == "attribute"), None)
    if attr is None:
        return None
    path = next((c for c in attr.children if c.type in ("identifier", "scoped_identifier")), None)
    if path is None:
        return None
    name = module.text(path).split("::")[-1]
    if name not in KEYWORDS:
        return None
    args = attr.child_by_field_name("arguments")
    if args is None:
        return name, "literal", None
    parts = [c for c in args.children if c.type not in ("(", ")", ",")]
    kind = "literal"
    if len(parts) >= 3 and parts[0].type == "identifier" and module.text(parts[1]) == "=":
        kind = {"expr": "cucumber", "regex": "regex"}.get(module.text(parts[0]), "unknown")
        parts = parts[2:]
    text = decode_string(parts[0], module) if parts else None
    return name, kind, text


def world_type(node: Any, module: RustModule) -> str | None:
    """The type of a step function's first parameter (``world: &mut BddWorld`` -> ``BddWorld``)."""
    params = node.child_by_field_name("parameters")
    first = next((c for c in params.named_children if c.type == "parameter"), None) if params else None
    type_node = first.child_by_field_name("type") if first is not None else None
    if type_node is None:
        return None
    return re.sub(r"^&\s*(mut\s+)?", "", module.text(type_node)).split("::")[-1].split("<")[0].strip()


def _params(node: Any, module: RustModule) -> list[str]:
    params = node.child_by_field_name("parameters")
    names: list[str] = []
    for child in params.children if params is not None else []:
        if child.type == "parameter":
            pattern = child.child_by_field_name("pattern")
            names.append(module.text(pattern) if pattern is not None else "_")
        elif child.type == "self_parameter":
            names.append("self")
    return names


def scan(path: Path, display: str, crate: str, errors: list[SourceError]) -> RustModule | None:
    try:
        source = path.read_bytes()
    except OSError as exc:
        errors.append(SourceError(display, 0, f"cannot read: {exc}"))
        return None
    tree = parser().parse(source)
    module = RustModule(path, display, crate, source, tree)
    if tree.root_node.has_error:
        first = _first_error(tree.root_node)
        line = first.start_point[0] + 1 if first is not None else 0
        errors.append(SourceError(display, line, "Rust syntax error (tree-sitter could not parse this part)"))
    return module


def _first_error(node: Any) -> Any:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error:
            found = _first_error(child)
            if found is not None:
                return found
    return None


@dataclass
class RustScan:
    functions: list[StepFunction] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)  # custom cucumber parameter: name -> regex
    types: set[str] = field(default_factory=set)  # struct/enum/type names the suite defines


def collect(module: RustModule, out: RustScan, order: list[int]) -> None:
    """Step functions, helpers, World methods and custom parameters of one module."""

    def uses_anywhere(node: Any) -> None:  # ``use`` inside function bodies counts too
        for child in node.children:
            if child.type == "use_declaration":
                _use(child)
            elif child.type in ("struct_item", "enum_item", "type_item", "trait_item"):
                name = child.child_by_field_name("name")
                if name is not None:
                    out.types.add(module.text(name))
            if child.child_count:
                uses_anywhere(child)

    def visit(node: Any, impl_of: str | None) -> None:
        pending: list[Any] = []
        for child in node.children:
            if child.type == "attribute_item":
                pending.append(child)
                continue
            if child.type in ("line_comment", "block_comment"):
                continue
            if child.type == "function_item":
                _function(child, pending, impl_of)
            elif child.type in ("struct_item", "enum_item"):
                _parameter(child, pending)
            elif child.type == "impl_item":
                type_node = child.child_by_field_name("type")
                trait = child.child_by_field_name("trait")
                name = module.text(type_node) if type_node is not None else None
                body = child.child_by_field_name("body")
                if body is not None:
                    visit(body, f"{module.text(trait)} for {name}" if trait is not None else name)
            elif child.type in ("mod_item", "declaration_list"):
                body = child.child_by_field_name("body") if child.type == "mod_item" else child
                if body is not None:
                    visit(body, None)
            pending = []

    def _use(node: Any) -> None:
        text = module.text(node)
        body = text[len("use ") :].rstrip(";").strip() if text.startswith("use ") else ""
        if "{" in body:
            prefix, _, rest = body.partition("{")
            for item in rest.rstrip("}").split(","):
                item = item.strip()
                if item:
                    alias = item.split(" as ")
                    out_name = alias[-1].split("::")[-1].strip()
                    module.uses[out_name] = prefix + alias[0].strip()
        elif body:
            alias = body.split(" as ")
            module.uses[alias[-1].split("::")[-1].strip()] = alias[0].strip()

    def _function(node: Any, attributes: list[Any], impl_of: str | None) -> None:
        name_node = node.child_by_field_name("name")
        name = module.text(name_node) if name_node is not None else "?"
        registrations = [(a, r) for a in attributes if (r := _attribute(a, module)) is not None]
        if impl_of is not None:
            owner = impl_of.split(" for ")[-1].split("<")[0].strip()
            module.impls.setdefault(owner, {})[name] = node
        if not registrations:
            if impl_of is None:  # free functions only: methods are found through their type
                module.functions.setdefault(name, []).append(node)
            return
        first = min([a.start_point[0] + 1 for a, _ in registrations] + [node.start_point[0] + 1])
        func = StepFunction(
            path=module.display,
            name=name,
            line=node.start_point[0] + 1,
            first_line=first,
            node=node,
            module=module,
            language="rust",
        )
        for attr, (keyword, kind, text) in registrations:
            if kind == "unknown":
                func.reasons.append(
                    f"attribute at line {attr.start_point[0] + 1} is not a literal, expr or regex"
                )
                text = None
            func.patterns.append(
                Pattern(
                    family="rust",
                    keyword=keyword,
                    parser=kind if kind != "unknown" else "literal",
                    text=text,
                    line=attr.start_point[0] + 1,
                    order=len(order),
                    namespace=module.crate,
                    path=module.display,
                )
            )
            order.append(1)
        out.functions.append(func)

    def _parameter(node: Any, attributes: list[Any]) -> None:
        texts = [module.text(a) for a in attributes]
        if not any("Parameter" in t for t in texts if "derive" in t):
            return
        name_node = node.child_by_field_name("name")
        type_name = module.text(name_node) if name_node is not None else ""
        for text in texts:
            if text.startswith("#[param"):
                regex = re.search(r'regex\s*=\s*(r#*"(.*?)"#*|"((?:[^"\\]|\\.)*)")', text, re.S)
                alias = re.search(r'name\s*=\s*"([^"]*)"', text)
                if regex:
                    value = (
                        regex.group(2)
                        if regex.group(2) is not None
                        else bytes(regex.group(3), "utf-8").decode("unicode_escape")
                    )
                    out.parameters[alias.group(1) if alias else type_name.lower()] = value

    uses_anywhere(module.tree.root_node)
    visit(module.tree.root_node, None)
