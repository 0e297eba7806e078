"""Resource URLs parsed into (type, namespace, name, subresource), as the API server routes them."""

from __future__ import annotations

import dataclasses

from .registry import Registry, ResourceType


@dataclasses.dataclass(frozen=True)
class Target:
    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch: bool = False  # the legacy /watch/ prefix


def parse(path: str, registry: Registry) -> Target | None:
    """The resource a URL addresses; None for discovery and other non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = rest[0] == "watch"
    rest = rest[1:] if watch else rest
    namespace = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and _namespaced(registry, group, version, rest[2])
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    return Target(
        group=group,
        version=version,
        plural=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource="/".join(rest[2:]) or None,
        watch=watch,
    )


def _namespaced(registry: Registry, group: str, version: str, plural: str) -> bool:
    """Whether `/namespaces/x/<plural>` names a namespaced kind (not a namespace's subresource)."""
    rtype: ResourceType | None = registry.get(group, version, plural)
    if rtype is not None:
        return rtype.namespaced
    return not (group == "" and plural in {"status", "finalize"})
