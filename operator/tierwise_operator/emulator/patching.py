"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge covers what kubectl's client-side apply sends: keyed lists merge
item by item (`shapes` says which), primitive sets merge, other lists replace;
the directives `$patch: replace|delete|merge`, `$retainKeys`,
`$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` are honoured.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from .shapes import ListType, Shape, item_key

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


class PatchError(ValueError):
    """The patch cannot apply to this object (answered with 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902; a failed `test` or a missing path raises PatchError."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        result: dict[str, Any] = jsonpatch.apply_patch(target, operations)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchError(f"the server rejected our request due to an error: {exc}") from exc
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise PatchError(f"the JSON patch cannot apply: {exc}") from exc
    return result


def strategic_merge(target: Any, patch: Any, shape: Shape) -> Any:
    """A strategic merge patch of a map; returns None when the patch deletes the map."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: v for k, v in _plain(patch).items()}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, shape.field(key))
        else:
            merged = strategic_merge(result.get(key), value, shape.field(key))
            if merged is None and isinstance(value, dict):
                result.pop(key, None)
            else:
                result[key] = merged
    _apply_list_directives(result, patch, shape)
    if isinstance(patch.get("$retainKeys"), list):
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def _plain(patch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in patch.items() if not k.startswith("$")}


def _merge_list(target: Any, patch: list[Any], shape: Shape) -> list[Any]:
    list_type = shape.list_type()
    current = list(target) if isinstance(target, list) else []
    if list_type.kind == "set":
        return current + [v for v in patch if v not in current]
    if list_type.kind != "map" or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    if any(item.get("$patch") == "replace" for item in patch):
        return [_plain(i) for i in patch if i.get("$patch") != "replace"]
    for item in patch:
        _merge_item(current, item, list_type, shape.items())
    return current


def _merge_item(
    current: list[Any], item: dict[str, Any], list_type: ListType, shape: Shape
) -> None:
    key = item_key(item, list_type)
    index = next(
        (i for i, old in enumerate(current) if key is not None and item_key(old, list_type) == key),
        None,
    )
    if item.get("$patch") == "delete":
        if index is not None:
            del current[index]
    elif index is None:
        current.append(strategic_merge({}, item, shape))
    else:
        current[index] = strategic_merge(current[index], item, shape)


def _apply_list_directives(result: dict[str, Any], patch: dict[str, Any], shape: Shape) -> None:
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key.removeprefix(_DELETE_PRIMITIVE)
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
        elif key.startswith(_ORDER):
            field = key.removeprefix(_ORDER)
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = _ordered(result[field], value, shape.field(field).list_type())


def _ordered(items: list[Any], order: list[Any], list_type: ListType) -> list[Any]:
    """Items in the order the patch gives; items it does not name keep their place at the end."""
    keys = [item_key(o, list_type) if list_type.kind == "map" else o for o in order]

    def rank(item: Any) -> int:
        key = item_key(item, list_type) if list_type.kind == "map" else item
        return keys.index(key) if key in keys else len(keys)

    return sorted(items, key=rank)
