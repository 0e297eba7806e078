"""Sets of field paths as server-side apply tracks them, and their `fieldsV1` encoding.

A path is a tuple of segments in the API server's notation: `f:<field>` for a
map field, `k:{"name":"app"}` for an item of a keyed list, `v:"x"` for a
member of a set. Leaves are scalars, atomic lists and empty maps; items of
keyed lists are paths too, so a manager can own an item as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .shapes import Shape

Path = tuple[str, ...]
MISSING = object()

# Server-maintained metadata is never owned by a manager.
_UNTRACKED_META = {"labels", "annotations", "ownerReferences", "finalizers"}
_UNTRACKED_TOP = {"apiVersion", "kind"}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def item_segment(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + _dumps({k: item.get(k) for k in keys})


def paths(value: Any, shape: Shape, prefix: Path = ()) -> set[Path]:
    """Every owned path of an object (or part of one)."""
    if isinstance(value, dict):
        if not value:
            return {prefix}
        out: set[Path] = set()
        for key, sub in value.items():
            if _untracked(prefix, key):
                continue
            out |= paths(sub, shape.field(key), (*prefix, f"f:{key}"))
        return out
    if isinstance(value, list):
        return _list_paths(value, shape, prefix)
    return {prefix}


def _untracked(prefix: Path, key: str) -> bool:
    if not prefix:
        return key in _UNTRACKED_TOP
    return prefix == ("f:metadata",) and key not in _UNTRACKED_META


def _list_paths(value: list[Any], shape: Shape, prefix: Path) -> set[Path]:
    list_type = shape.list_type()
    if list_type.kind == "set":
        return {(*prefix, "v:" + _dumps(v)) for v in value}
    if list_type.kind != "map" or not all(isinstance(i, dict) for i in value):
        return {prefix}
    out: set[Path] = set()
    for item in value:
        node = (*prefix, item_segment(item, list_type.keys))
        out |= {node} | paths(item, shape.items(), node)
    return out


def get(obj: Any, path: Path) -> Any:
    """The value at a path, or MISSING."""
    node = obj
    for segment in path:
        node = _step(node, segment)
        if node is MISSING:
            return MISSING
    return node


def _step(node: Any, segment: str) -> Any:
    kind, text = segment[:2], segment[2:]
    if kind == "f:":
        return node.get(text, MISSING) if isinstance(node, dict) else MISSING
    if not isinstance(node, list):
        return MISSING
    wanted = json.loads(text)
    if kind == "v:":
        return wanted if wanted in node else MISSING
    for item in node:
        if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
            return item
    return MISSING


def remove(obj: Any, path: Path) -> None:
    """Delete the field, list item or set member at a path, if it is there."""
    parent = get(obj, path[:-1])
    segment = path[-1]
    kind, text = segment[:2], segment[2:]
    if kind == "f:" and isinstance(parent, dict):
        parent.pop(text, None)
    elif isinstance(parent, list):
        target = _step(parent, segment)
        if target is not MISSING:
            parent.remove(target)


def encode(owned: set[Path]) -> dict[str, Any]:
    """The `fieldsV1` form: nested maps of segments, `.` marking an owned inner node."""
    root: dict[str, Any] = {}
    for path in sorted(owned):
        node = root
        for segment in path:
            node = node.setdefault(segment, {})
    for path in owned:
        node = root
        for segment in path:
            node = node[segment]
        if node and "." not in node:
            node["."] = {}
    return root


def decode(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    return set(_decode(fields, prefix))


def _decode(fields: dict[str, Any], prefix: Path) -> Iterator[Path]:
    for segment, sub in fields.items():
        if segment == ".":
            yield prefix
        elif sub:
            yield from _decode(sub, (*prefix, segment))
        else:
            yield (*prefix, segment)
