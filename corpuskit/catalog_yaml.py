"""The catalog's safe YAML reader: no code runs, hostile shapes are refused, lines are kept.

Split from :mod:`corpuskit.catalog` so that the schema stays readable. Every mapping remembers the
line of each key (``__lines__``/``__line__``) so that a validation error can name the line; the
bounds check refuses deep nesting and alias bombs before anything is constructed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from corpuskit.errors import CatalogError


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", node.start_mark
            )
    mapping = loader.construct_mapping(node, deep=True)
    lines = {
        k: key_node.start_mark.line + 1
        for key_node, _ in node.value
        for k in [loader.construct_object(key_node)]
    }
    mapping["__lines__"] = lines
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# Bounds on what one catalog file may ask the loader to build: entries are a few levels deep
# and a few hundred values, so these only stop hostile files (deep nesting would exhaust the
# recursion limit; aliases of aliases, a "billion laughs", would expand exponentially).
MAX_DEPTH = 64
MAX_VALUES = 1_000_000


def _children(node: yaml.Node, label: str) -> list[tuple[yaml.Node, str]]:
    """A node's keys and values, each with the mapping key it sits under (for messages)."""
    if isinstance(node, yaml.SequenceNode):
        return [(n, label) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        out = []
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else label
            out += [(k, label), (v, str(name))]
        return out
    return []


def _check_bounds(root: yaml.Node, path: Path) -> None:
    """Refuse a YAML graph deeper than MAX_DEPTH, expanding (aliases counted every time they
    are used) to more than MAX_VALUES values, or holding an alias to itself; iterative, and
    linear in the number of distinct nodes."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    while stack:
        node, label, finished = stack.pop()
        key = id(node)
        where = f"{path}:{node.start_mark.line + 1}: " + (f"{label!r}: " if label else "")
        if finished:
            kids = [k for k, _ in _children(node, label)]
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if height[key] > MAX_DEPTH:
                raise CatalogError(
                    f"{where}nested more than {MAX_DEPTH} levels deep; a catalog is a list "
                    "of flat entries"
                )
            if size[key] > MAX_VALUES:
                raise CatalogError(
                    f"{where}aliases expand to more than {MAX_VALUES:,} values (a YAML "
                    "bomb?); refused"
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise CatalogError(f"{where}an alias refers to a value that contains it; refused")
        on_path.add(key)
        stack.append((node, label, True))
        stack.extend((k, name, False) for k, name in _children(node, label) if id(k) not in size)


def _parse_yaml(text: str, path: Path) -> Any:
    """``yaml.load`` with :func:`_check_bounds` between composing and constructing."""
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_bounds(node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k not in ("__lines__", "__line__")}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _line_of(raw: Any, loc: Sequence[Any]) -> int | None:
    """Walk a pydantic error location through the raw YAML to the nearest line we know."""
    line = raw.get("__line__") if isinstance(raw, dict) else None
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = node.get("__lines__", {}).get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict):
                line = node.get("__line__", line)
        else:
            break
    return line
