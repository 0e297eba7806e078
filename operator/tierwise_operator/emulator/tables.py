"""meta.k8s.io/v1 Tables for `kubectl get`, built from printer columns.

The first column is the name; the others are the CRD's additionalPrinterColumns
(or the emulator's columns for built-in kinds), evaluated with the JSONPath
subset in `jsonpath`. Date columns become ages ("5m"), as the server renders
them.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from .jsonpath import evaluate
from .registry import Column, ResourceType

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for a Table (kubectl sends `as=Table;g=meta.k8s.io`)."""
    for media in accept.split(","):
        params = {
            p.split("=", 1)[0].strip(): p.partition("=")[2].strip() for p in media.split(";")[1:]
        }
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def column_definitions(rtype: ResourceType) -> list[dict[str, Any]]:
    return [NAME_COLUMN] + [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }
        for c in rtype.columns
    ]


def table(
    rtype: ResourceType,
    objects: list[dict[str, Any]],
    *,
    resource_version: str,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": column_definitions(rtype),
        "rows": [row(rtype, obj, include_object) for obj in objects],
    }


def row(
    rtype: ResourceType, obj: dict[str, Any], include_object: str = "Metadata"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cells": [obj["metadata"]["name"], *(cell(c, obj) for c in rtype.columns)]
    }
    if include_object == "Object":
        out["object"] = obj
    elif include_object != "None":
        out["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    return out


def cell(column: Column, obj: dict[str, Any]) -> Any:
    values = evaluate(column.json_path, obj)
    if not values:
        return None
    if column.type == "date":
        return age(values[0])
    if len(values) > 1:
        return ",".join(_text(v) for v in values)
    value = values[0]
    if column.type == "integer" and isinstance(value, int):
        return value
    if column.type == "number" and isinstance(value, int | float):
        return value
    if column.type == "boolean" and isinstance(value, bool):
        return value
    return _text(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def age(timestamp: Any, now: datetime.datetime | None = None) -> str:
    """A timestamp as kubectl's human duration ("45s", "5m", "3h", "2d")."""
    try:
        then = datetime.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"
