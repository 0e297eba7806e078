"""Discovery documents (/api, /apis, group versions, /version) and a minimal OpenAPI v3.

The OpenAPI v3 documents only say, for each resource, that PATCH takes the
`fieldValidation` query parameter: that is what kubectl checks to leave
validation to the server instead of downloading full schemas.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .registry import Registry, ResourceType

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+tierwise-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"]}


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in sorted(registry.groups().items()) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _resource_entries(rtype: ResourceType) -> list[dict[str, Any]]:
    main = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
        "shortNames": list(rtype.short_names),
        "categories": list(rtype.categories),
        "storageVersionHash": hashlib.sha256(rtype.qualified.encode()).hexdigest()[:12],
    }
    subs = [
        {
            "name": f"{rtype.plural}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
        }
        for sub in rtype.subresources
    ]
    return [main, *subs]


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry if (t.group, t.version) == (group, version)]
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            e for t in sorted(types, key=lambda t: t.plural) for e in _resource_entries(t)
        ],
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_root(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            doc = openapi_group_version(registry, group, version) or {}
            digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}


def openapi_group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry if (t.group, t.version) == (group, version)]
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rtype in types:
        gvk = {"group": group, "version": version, "kind": rtype.kind}
        patch = {
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": {"description": "OK"}},
        }
        template = "/namespaces/{namespace}" if rtype.namespaced else ""
        root = "/apis/" + f"{group}/{version}" if group else f"/api/{version}"
        paths[f"{root}{template}/{rtype.plural}/{{name}}"] = {"patch": patch}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
