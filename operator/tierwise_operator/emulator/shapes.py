"""How lists merge, field by field: keyed maps, sets or atomic lists (for patches and apply).

Custom resources read it from their schema (`x-kubernetes-list-type`,
`x-kubernetes-list-map-keys`), as the API server does. Built-in kinds use the
merge keys of the Kubernetes types the operator touches (containers, ports,
env, volumes, ...); any list not named here is atomic, which is what the
real types declare for args, command, tolerations and the like.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from .registry import ResourceType


@dataclasses.dataclass(frozen=True)
class ListType:
    kind: str  # "atomic", "set" or "map"
    keys: tuple[str, ...] = ()


ATOMIC = ListType("atomic")

# (field, enclosing field) first, then field alone; the enclosing field of a list item's
# field is the list's name, so container ports differ from a Service's ports.
_BUILTIN_LISTS: dict[tuple[str, str] | str, ListType] = {
    ("ports", "containers"): ListType("map", ("containerPort",)),
    ("ports", "initContainers"): ListType("map", ("containerPort",)),
    "ports": ListType("map", ("port",)),
    "containers": ListType("map", ("name",)),
    "initContainers": ListType("map", ("name",)),
    "ephemeralContainers": ListType("map", ("name",)),
    "env": ListType("map", ("name",)),
    "volumes": ListType("map", ("name",)),
    "volumeMounts": ListType("map", ("mountPath",)),
    "volumeDevices": ListType("map", ("devicePath",)),
    "imagePullSecrets": ListType("map", ("name",)),
    "ownerReferences": ListType("map", ("uid",)),
    "conditions": ListType("map", ("type",)),
    "hostAliases": ListType("map", ("ip",)),
    "readinessGates": ListType("map", ("conditionType",)),
    "topologySpreadConstraints": ListType("map", ("topologyKey",)),
    "finalizers": ListType("set"),
}


class Shape(Protocol):
    """The structure below one point of an object."""

    def field(self, name: str) -> Shape: ...

    def items(self) -> Shape: ...

    def list_type(self) -> ListType: ...


@dataclasses.dataclass(frozen=True)
class BuiltinShape:
    """Structure of built-in kinds, known by field names."""

    name: str = ""
    parent: str = ""

    def field(self, name: str) -> Shape:
        return BuiltinShape(name, self.name or self.parent)  # an item's fields: the list's name

    def items(self) -> Shape:
        return BuiltinShape("", self.name)

    def list_type(self) -> ListType:
        return _BUILTIN_LISTS.get((self.name, self.parent)) or _BUILTIN_LISTS.get(self.name, ATOMIC)


@dataclasses.dataclass(frozen=True)
class SchemaShape:
    """Structure of a custom resource, read from its OpenAPI v3 schema."""

    node: dict[str, Any]

    def field(self, name: str) -> Shape:
        props = self.node.get("properties", {})
        if name in props:
            return SchemaShape(props[name])
        extra = self.node.get("additionalProperties")
        return SchemaShape(extra if isinstance(extra, dict) else {})

    def items(self) -> Shape:
        items = self.node.get("items")
        return SchemaShape(items if isinstance(items, dict) else {})

    def list_type(self) -> ListType:
        kind = self.node.get("x-kubernetes-list-type", "atomic")
        if kind == "map":
            return ListType("map", tuple(self.node.get("x-kubernetes-list-map-keys", ())))
        return ListType(kind)


@dataclasses.dataclass(frozen=True)
class ObjectShape:
    """The root of an object: metadata is always ObjectMeta, the rest follows the kind."""

    body: Shape

    def field(self, name: str) -> Shape:
        return BuiltinShape(name, "") if name == "metadata" else self.body.field(name)

    def items(self) -> Shape:
        return self.body.items()

    def list_type(self) -> ListType:
        return ATOMIC


def shape_of(rtype: ResourceType) -> Shape:
    if rtype.custom and rtype.schema is not None:
        return ObjectShape(SchemaShape(rtype.schema))
    return ObjectShape(BuiltinShape())


def item_key(item: Any, list_type: ListType) -> Any:
    """What identifies an item of a keyed list or a set; None for items without their key."""
    if list_type.kind == "set":
        return item if isinstance(item, str | int | float | bool) else repr(item)
    if list_type.kind == "map" and isinstance(item, dict):
        values = tuple(item.get(k) for k in list_type.keys)
        return None if values and values[0] is None else values
    return None
