"""The resource types the emulator serves: built-in kinds and those registered from CRDs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class Column:
    """One printer column of `kubectl get` (a CRD's additionalPrinterColumns entry)."""

    name: str
    type: str
    json_path: str
    priority: int = 0
    format: str = ""
    description: str = ""


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """What discovery says about one resource, plus the schema and columns the server uses."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    schema: dict[str, Any] | None = dataclasses.field(default=None, compare=False)
    columns: tuple[Column, ...] = ()
    custom: bool = False  # served from a CRD: no strategic merge, schema-driven lists

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def qualified(self) -> str:
        """`inferencemodels.tierwise.dev`, as the API server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of the collection or of one object."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            root += f"/namespaces/{namespace}"
        root += f"/{self.plural}"
        return f"{root}/{name}" if name is not None else root


def _age() -> Column:
    return Column("Age", "date", ".metadata.creationTimestamp")


def _builtin(
    api_version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    columns: tuple[Column, ...] = (),
) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        subresources=("status",) if status else (),
        columns=(*columns, _age()),
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short=("ns",),
        status=True,
        columns=(Column("Status", "string", ".status.phase"),),
    ),
    _builtin("v1", "nodes", "Node", namespaced=False, short=("no",), status=True),
    _builtin(
        "v1",
        "pods",
        "Pod",
        short=("po",),
        status=True,
        columns=(
            Column("Status", "string", ".status.phase"),
            Column("Restarts", "integer", ".status.containerStatuses[0].restartCount"),
            Column("Node", "string", ".spec.nodeName", priority=1),
        ),
    ),
    _builtin(
        "v1",
        "services",
        "Service",
        short=("svc",),
        status=True,
        columns=(
            Column("Type", "string", ".spec.type"),
            Column("Cluster-IP", "string", ".spec.clusterIP"),
        ),
    ),
    _builtin("v1", "configmaps", "ConfigMap", short=("cm",)),
    _builtin("v1", "secrets", "Secret"),
    _builtin("v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _builtin(
        "v1",
        "events",
        "Event",
        short=("ev",),
        columns=(
            Column("Type", "string", ".type"),
            Column("Reason", "string", ".reason"),
            Column("Object", "string", ".involvedObject.name"),
            Column("Message", "string", ".message"),
        ),
    ),
    _builtin("v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _builtin(
        "apps/v1",
        "deployments",
        "Deployment",
        short=("deploy",),
        status=True,
        columns=(
            Column("Ready", "integer", ".status.readyReplicas"),
            Column("Up-to-date", "integer", ".status.updatedReplicas"),
            Column("Available", "integer", ".status.availableReplicas"),
        ),
    ),
    _builtin(
        "batch/v1",
        "jobs",
        "Job",
        status=True,
        columns=(
            Column("Succeeded", "integer", ".status.succeeded"),
            Column("Failed", "integer", ".status.failed"),
        ),
    ),
    _builtin(
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short=("pdb",),
        status=True,
        columns=(
            Column("Min available", "string", ".spec.minAvailable"),
            Column("Max unavailable", "string", ".spec.maxUnavailable"),
        ),
    ),
    _builtin("coordination.k8s.io/v1", "leases", "Lease"),
    # RBAC objects are stored and served (`kubectl apply -k deploy/default` works), not enforced.
    _builtin("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    _builtin(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        status=True,
    ),
)


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition declares, one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        columns = tuple(
            Column(
                name=c["name"],
                type=c.get("type", "string"),
                json_path=c["jsonPath"],
                priority=c.get("priority", 0),
                format=c.get("format", ""),
                description=c.get("description", ""),
            )
            for c in version.get("additionalPrinterColumns", ())
        )
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular", names["kind"].lower()),
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                subresources=tuple(sorted(version.get("subresources", {}))),
                schema=version.get("schema", {}).get("openAPIV3Schema"),
                columns=columns or (_age(),),
                custom=True,
            )
        )
    return types


class Registry:
    """The served resource types, by (group, version, plural) and by kind."""

    def __init__(self, types: tuple[ResourceType, ...] = BUILTINS) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in types:
            self.add(rtype)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove(self, group: str, plural: str) -> None:
        for key in [k for k in self._types if k[0] == group and k[2] == plural]:
            del self._types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rtype in self._types.values():
            if rtype.api_version == api_version and rtype.kind == kind:
                return rtype
        return None

    def lookup(self, name: str) -> ResourceType:
        """A type by `plural`, `plural.group`, kind or short name, as kubectl would resolve it."""
        for rtype in self._types.values():
            names = {rtype.plural, rtype.qualified, rtype.kind.lower(), *rtype.short_names}
            if name.lower() in names:
                return rtype
        raise KeyError(f"no resource type {name!r} is served")

    def groups(self) -> dict[str, list[str]]:
        """Every API group (core is "") and its versions."""
        out: dict[str, list[str]] = {}
        for rtype in self._types.values():
            versions = out.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return out
