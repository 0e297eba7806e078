"""Admission of custom resources by their CRD schema: pruning, defaulting, validation.

The order is the API server's: unknown fields are pruned (or, with
`fieldValidation=Strict`, refused), schema defaults fill absent fields, then the
OpenAPI schema and CEL rules are checked by
`tierwise_operator.crd.validate.validate_object`.
"""

from __future__ import annotations

import copy
from typing import Any

from ..crd.validate import validate_object


def prune(value: Any, schema: dict[str, Any], path: str = "") -> tuple[Any, list[str]]:
    """The value without fields the schema does not know, and the paths of those fields."""
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return value, []
        out, dropped = [], []
        for index, item in enumerate(value):
            kept, lost = prune(item, items, f"{path}[{index}]")
            out.append(kept)
            dropped += lost
        return out, dropped
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return value, []
    if path == "metadata":
        return value, []  # ObjectMeta is the server's own, never pruned by a CRD schema
    return _prune_map(value, schema, path)


def _prune_map(value: dict[str, Any], schema: dict[str, Any], path: str) -> tuple[Any, list[str]]:
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    out, dropped = {}, []
    for key, item in value.items():
        sub = f"{path}.{key}" if path else key
        if key in props:
            out[key], lost = prune(item, props[key], sub)
        elif isinstance(extra, dict):
            out[key], lost = prune(item, extra, sub)
        elif extra is True or (path == "" and key in {"apiVersion", "kind", "metadata"}):
            out[key], lost = item, []
        else:
            lost = [sub]
        dropped += lost
    return out, dropped


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill absent fields that have a schema default, inside maps that are present."""
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = apply_defaults(out[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in out.keys() - schema.get("properties", {}).keys():
            out[key] = apply_defaults(out[key], extra)
    return out


def admit(
    obj: dict[str, Any], schema: dict[str, Any], *, strict: bool
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(admitted object, problems, warnings): problems make the write fail with 422."""
    pruned, unknown = prune(obj, schema)
    if unknown and strict:
        return obj, [f'{path}: Invalid value: unknown field "{path}"' for path in unknown], []
    warnings = [f'unknown field "{path}"' for path in unknown]
    defaulted = apply_defaults(pruned, schema)
    return defaulted, validate_object(defaulted, schema), warnings
