"""Check a CRD schema against the API server's rules for structural schemas.

The rules are those of apiextensions.k8s.io/v1 ("Specifying a structural
schema" in the Kubernetes docs, and the validation in
k8s.io/apiextensions-apiserver): every node typed, no references, logical
junctors (allOf/anyOf/oneOf/not) that only restrict, metadata left alone,
and only the keywords JSONSchemaProps has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Fields of JSONSchemaProps the API server accepts in a v1 CRD. Anything else
# (title, const, $ref, $defs, examples, prefixItems...) is rejected or dropped.
ALLOWED_KEYWORDS = {
    "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties",
    "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
    "additionalProperties", "nullable", "example", "externalDocs",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
    "x-kubernetes-map-type", "x-kubernetes-validations",
}  # fmt: skip
_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# What may not appear inside a junctor (the int-or-string pattern excepted).
_FORBIDDEN_IN_JUNCTORS = {"description", "type", "default", "additionalProperties", "nullable"}
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def check_structural(
    schema: dict[str, Any], preserve_unknown_at: frozenset[str] = frozenset()
) -> list[str]:
    """Every rule the schema breaks, as ``path: problem``; an empty list means structural.

    ``preserve_unknown_at`` lists the paths where free-form maps are meant and
    ``x-kubernetes-preserve-unknown-fields`` is therefore allowed.
    """
    problems = list(_check_node(schema, "", preserve_unknown_at, root=True))
    props = schema.get("properties", {})
    if "metadata" in props:
        problems += _check_metadata(props["metadata"])
    return problems


def _check_node(
    node: Any, path: str, preserve: frozenset[str], root: bool = False
) -> Iterator[str]:
    where = path or "<root>"
    if not isinstance(node, dict):
        yield f"{where}: schema must be an object, got {type(node).__name__}"
        return
    for key in node:
        if key not in ALLOWED_KEYWORDS:
            yield f"{where}: keyword {key!r} is not allowed in a CRD schema"
    yield from _check_type(node, where, preserve, path)
    yield from _check_values(node, where)
    for junctor in _JUNCTORS:
        if junctor in node:
            yield from _check_junctor(node, junctor, where)
    if "properties" in node and "additionalProperties" in node:
        yield f"{where}: properties and additionalProperties are mutually exclusive"
    for name, sub in node.get("properties", {}).items():
        yield from _check_node(sub, f"{path}.{name}", preserve)
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        yield from _check_node(additional, f"{path}.*", preserve)
    elif additional is False:
        yield f"{where}: additionalProperties: false is not allowed (the API server prunes)"
    if "items" in node:
        if isinstance(node["items"], list):
            yield f"{where}: items must be one schema, not a list"
        else:
            yield from _check_node(node["items"], f"{path}[]", preserve)
    yield from _check_list_map(node, where)


def _check_type(
    node: dict[str, Any], where: str, preserve: frozenset[str], path: str
) -> Iterator[str]:
    type_ = node.get("type")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserves = node.get("x-kubernetes-preserve-unknown-fields") is True
    if preserves and path not in preserve:
        yield f"{where}: x-kubernetes-preserve-unknown-fields is only for free-form maps"
    if int_or_string:
        if type_ is not None:
            yield f"{where}: x-kubernetes-int-or-string nodes must not set a type"
        if "anyOf" in node and node["anyOf"] != _INT_OR_STRING:
            yield f"{where}: int-or-string anyOf must be exactly [integer, string]"
        return
    if type_ is None and not preserves:
        yield f"{where}: every node needs a type"
    elif type_ is not None and type_ not in _TYPES:
        yield f"{where}: type {type_!r} is not one of {sorted(_TYPES)} (use nullable for null)"
    if type_ == "object" and "items" in node:
        yield f"{where}: an object has no items"
    if type_ == "array" and "items" not in node:
        yield f"{where}: an array needs items"


def _check_values(node: dict[str, Any], where: str) -> Iterator[str]:
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node and not isinstance(node[bound], bool):
            yield f"{where}: {bound} must be a boolean in OpenAPI v3"
    if "enum" in node and node.get("type") in _TYPES:
        expected = {
            "string": str, "integer": int, "number": int | float, "boolean": bool,
            "object": dict, "array": list,
        }[node["type"]]  # fmt: skip
        for value in node["enum"]:
            if not isinstance(value, expected) or (
                node["type"] in {"integer", "number"} and isinstance(value, bool)
            ):
                yield f"{where}: enum value {value!r} does not match type {node['type']}"
    if "required" in node:
        missing = set(node["required"]) - set(node.get("properties", {}))
        if missing:
            yield f"{where}: required names undeclared properties {sorted(missing)}"


def _check_junctor(node: dict[str, Any], junctor: str, where: str) -> Iterator[str]:
    if node.get("x-kubernetes-int-or-string") is True and junctor == "anyOf":
        return
    branches = node[junctor] if isinstance(node[junctor], list) else [node[junctor]]
    for branch in branches:
        for key in _FORBIDDEN_IN_JUNCTORS & set(branch):
            yield f"{where}: {junctor} must not set {key!r} (it may only restrict)"
        # Every field a junctor speaks about must also be declared outside it.
        declared = set(node.get("properties", {}))
        for name in set(branch.get("properties", {})) - declared:
            yield f"{where}: {junctor} mentions property {name!r} not declared outside it"
        for key in ("$ref", "$defs", "definitions"):
            if key in branch:
                yield f"{where}: {junctor} uses {key}"


def _check_list_map(node: dict[str, Any], where: str) -> Iterator[str]:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        return
    if list_type not in {"atomic", "set", "map"}:
        yield f"{where}: x-kubernetes-list-type {list_type!r} is not atomic, set or map"
    if list_type != "map":
        return
    keys = node.get("x-kubernetes-list-map-keys") or []
    items = node.get("items", {})
    if not keys:
        yield f"{where}: a map list needs x-kubernetes-list-map-keys"
    for key in keys:
        item = items.get("properties", {}).get(key)
        if item is None:
            yield f"{where}: list map key {key!r} is not a property of the items"
        elif key not in items.get("required", []) and "default" not in item:
            yield f"{where}: list map key {key!r} must be required or defaulted"


def _check_metadata(meta: dict[str, Any]) -> list[str]:
    problems = []
    if meta.get("type") != "object":
        problems.append(".metadata: must be type object")
    extra = set(meta.get("properties", {})) - {"name", "generateName"}
    if extra:
        problems.append(
            f".metadata: only name and generateName may be restricted, not {sorted(extra)}"
        )
    for key in set(meta) - {"type", "properties", "description"}:
        problems.append(f".metadata: {key!r} is not allowed on metadata")
    return problems
