"""The API server's semantics over the store: the verbs clients and controllers call.

Every write goes through one path: admission (server metadata, status split),
schema admission for custom resources (prune, default, validate), field
ownership, then the store. Deletion honours finalizers, graceful pod
termination and the propagation policy; the garbage collector does the rest.
"""

from __future__ import annotations

import copy
from typing import Any

from . import admission, apply, errors, patching, validation
from .registry import Registry, ResourceType, from_crd
from .selectors import field_predicate, label_predicate
from .shapes import shape_of
from .storage import Store

CRD_GROUP = "apiextensions.k8s.io"
_INITIAL_STATUS = {"namespaces": {"phase": "Active"}, "pods": {"phase": "Pending"}}


class ApiServer:
    """Create, read, update, patch, apply and delete objects as the real server would."""

    def __init__(self, registry: Registry, store: Store) -> None:
        self.registry = registry
        self.store = store
        self.orphaned: set[str] = set()  # uids deleted with propagationPolicy=Orphan

    # -- reading

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype, _ns(rtype, namespace), name)
        if obj is None:
            raise errors.not_found(rtype, name)
        return obj

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        copy: bool = True,
    ) -> list[dict[str, Any]]:
        """Matching objects; `copy=False` gives the stored ones, for readers that change nothing."""
        labels, fields = label_predicate(label_selector), field_predicate(field_selector)
        read = self.store.items if copy else self.store.peek
        items = read(rtype, _ns(rtype, namespace))
        return [obj for obj in items if labels(obj) and fields(obj)]

    # -- writing

    def create(
        self,
        rtype: ResourceType,
        body: Any,
        namespace: str | None = None,
        *,
        manager: str = "",
        strict: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = admission.prepare_create(rtype, body, _ns(rtype, namespace))
        meta = obj["metadata"]
        if rtype.namespaced:
            holder = self.store.get(self.registry.lookup("namespaces"), None, meta["namespace"])
            if holder is None:
                raise errors.namespace_not_found(meta["namespace"])
            if holder["metadata"].get("deletionTimestamp"):
                raise errors.namespace_terminating(rtype, meta["name"], meta["namespace"])
        if self.store.get(rtype, meta.get("namespace"), meta["name"]) is not None:
            raise errors.already_exists(rtype, meta["name"])
        if rtype.plural in _INITIAL_STATUS and not rtype.group:
            obj["status"] = copy.deepcopy(_INITIAL_STATUS[rtype.plural])
        return self._commit(rtype, None, obj, manager=manager, strict=strict, dry_run=dry_run)

    def update(
        self,
        rtype: ResourceType,
        body: Any,
        namespace: str | None,
        name: str,
        *,
        subresource: str | None = None,
        manager: str = "",
        strict: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Replace an object (PUT), or only its status through `subresource="status"`."""
        old = self.get(rtype, namespace, name)
        if isinstance(body, dict) and (body.get("metadata") or {}).get("name", name) != name:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        new = admission.prepare_update(rtype, old, body, subresource)
        return self._commit(
            rtype, old, new, manager=manager, strict=strict, sub=subresource, dry_run=dry_run
        )

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        manager: str = "",
        force: bool = False,
        strict: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if patch_type == patching.APPLY:
            return self._apply(
                rtype, namespace, name, body, subresource=subresource, manager=manager,
                force=force, dry_run=dry_run,
            )  # fmt: skip
        old = self.get(rtype, namespace, name)
        patched = self._patched(rtype, old, patch_type, body)
        new = admission.prepare_update(rtype, old, patched, subresource)
        return self._commit(
            rtype, old, new, manager=manager, strict=strict, sub=subresource, dry_run=dry_run
        )

    def _patched(self, rtype: ResourceType, old: dict[str, Any], kind: str, body: Any) -> Any:
        try:
            if kind == patching.MERGE:
                return patching.merge_patch(old, body)
            if kind == patching.JSON:
                return patching.json_patch(old, body)
            if kind == patching.STRATEGIC and not rtype.custom:
                return patching.strategic_merge(old, body, shape_of(rtype))
        except patching.PatchError as exc:
            raise errors.unprocessable(str(exc)) from exc
        raise errors.unsupported_media_type(kind)

    def _apply(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> dict[str, Any]:
        if not manager:
            raise errors.bad_request("PATCH with an apply patch requires a fieldManager")
        if not isinstance(body, dict):
            raise errors.bad_request("an apply patch must be a YAML or JSON object")
        old = self.store.get(rtype, _ns(rtype, namespace), name)
        config = copy.deepcopy(body)
        config.setdefault("metadata", {}).setdefault("name", name)
        if rtype.namespaced:
            config["metadata"].setdefault("namespace", _ns(rtype, namespace))
        try:
            merged = apply.apply(old, config, manager, shape_of(rtype), force=force)
        except apply.ApplyConflict as exc:
            raise errors.apply_conflict(rtype, name, exc.conflicts) from exc
        if old is None:
            return self.create(rtype, merged, namespace, manager="", dry_run=dry_run)
        new = admission.prepare_update(rtype, old, merged, subresource)
        return self._commit(
            rtype, old, new, manager="", strict=False, sub=subresource, dry_run=dry_run
        )

    def _commit(
        self,
        rtype: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        *,
        manager: str,
        strict: bool,
        sub: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Validate, record ownership and store one write (manager "" means: already recorded).

        A dry run stops before the store: validated and answered, changing nothing.
        """
        if rtype.custom and rtype.schema is not None:
            new, problems, _ = validation.admit(new, rtype.schema, strict=strict)
            if problems:
                raise errors.invalid(rtype, new["metadata"]["name"], problems)
        if rtype.group == CRD_GROUP:
            self._admit_crd(rtype, new)
        if manager:
            apply.record_update(old, new, manager, shape_of(rtype), sub or "")
        if dry_run:
            return new
        if old is not None and _same_object(old, new):
            # A real API server persists no write that changes nothing: no new
            # resourceVersion, no watch event, managedFields times kept.
            return old
        meta = new["metadata"]
        if old is not None and meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.store.put(rtype, new)
            return self._remove(rtype, new)
        stored = self.store.put(rtype, new)
        if rtype.group == CRD_GROUP:
            self._register_crd(stored)
        return stored

    # -- deleting

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        obj = self.get(rtype, namespace, name)
        meta = obj["metadata"]
        for field in ("uid", "resourceVersion"):
            if (preconditions or {}).get(field) not in (None, meta.get(field)):
                raise errors.conflict(rtype, name)
        if propagation == "Orphan" or (propagation is None and rtype.plural == "jobs"):
            self.orphaned.add(meta["uid"])  # batch/v1 Jobs orphan their pods by default
        if rtype.plural == "namespaces" and not rtype.group:
            return self._terminate_namespace(obj)
        if meta.get("deletionTimestamp") and grace_period != 0:
            return obj
        if meta.get("finalizers") or _graceful_pod(rtype, obj, grace_period):
            return self._mark_deleted(rtype, obj, grace_period)
        return self._remove(rtype, obj)

    def _mark_deleted(
        self, rtype: ResourceType, obj: dict[str, Any], grace_period: int | None
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        meta.setdefault("deletionTimestamp", admission.now())
        if rtype.plural == "pods":
            default = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            meta["deletionGracePeriodSeconds"] = default if grace_period is None else grace_period
        else:
            meta["deletionGracePeriodSeconds"] = 0
        meta["generation"] = meta.get("generation", 1) + 1
        return self.store.put(rtype, obj)

    def _remove(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        removed = self.store.remove(rtype, meta.get("namespace"), meta["name"])
        if rtype.group == CRD_GROUP:
            self._unregister_crd(removed)
        if rtype.namespaced:
            self._finish_namespace(meta["namespace"])
        return removed

    # -- namespaces (the namespace controller's part, done synchronously)

    def _terminate_namespace(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """Mark it Terminating and delete what it holds; finalizers and graceful pods keep
        their objects, and the namespace, until they are gone."""
        meta, name = namespace["metadata"], namespace["metadata"]["name"]
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = admission.now()
            namespace["status"] = {**(namespace.get("status") or {}), "phase": "Terminating"}
            namespace = self.store.put(self.registry.lookup("namespaces"), namespace)
        for rtype, obj in self._namespace_contents(name).values():
            if not obj["metadata"].get("deletionTimestamp"):
                self.delete(rtype, name, obj["metadata"]["name"])
        return self._finish_namespace(name) or namespace

    def _namespace_contents(self, namespace: str) -> dict[str, tuple[ResourceType, dict[str, Any]]]:
        """Every object in the namespace by uid (versions of one kind share their objects)."""
        found: dict[str, tuple[ResourceType, dict[str, Any]]] = {}
        for rtype in self.registry:
            if rtype.namespaced:
                for obj in self.store.items(rtype, namespace):
                    found.setdefault(obj["metadata"]["uid"], (rtype, obj))
        return found

    def _finish_namespace(self, name: str) -> dict[str, Any] | None:
        """Remove a Terminating namespace once nothing is left in it."""
        namespaces = self.registry.lookup("namespaces")
        namespace = self.store.get(namespaces, None, name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return None
        if any(self.store.peek(t, name) for t in self.registry if t.namespaced):
            return None
        return self.store.remove(namespaces, None, name)

    # -- CustomResourceDefinitions

    def _admit_crd(self, rtype: ResourceType, crd: dict[str, Any]) -> None:
        if rtype.plural != "customresourcedefinitions":
            return
        try:
            types = from_crd(crd)
        except (KeyError, TypeError) as exc:
            problem = f"spec: Required value: {exc}"
            raise errors.invalid(rtype, crd["metadata"]["name"], [problem]) from exc
        names = crd["spec"]["names"]
        crd["status"] = {
            "acceptedNames": {k: v for k, v in names.items()},
            "storedVersions": [t.version for t in types],
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": admission.now(),
                }
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }

    def _register_crd(self, crd: dict[str, Any]) -> None:
        if crd.get("kind") == "CustomResourceDefinition":
            for rtype in from_crd(crd):
                self.registry.add(rtype)

    def _unregister_crd(self, crd: dict[str, Any]) -> None:
        if crd.get("kind") != "CustomResourceDefinition":
            return
        for rtype in from_crd(crd):
            for obj in self.store.items(rtype):
                self.store.remove(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.registry.remove(crd["spec"]["group"], crd["spec"]["names"]["plural"])


def _ns(rtype: ResourceType, namespace: str | None) -> str | None:
    return namespace if rtype.namespaced else None


def _graceful_pod(rtype: ResourceType, obj: dict[str, Any], grace_period: int | None) -> bool:
    """A pod on a node terminates through its kubelet unless deleted with grace period 0."""
    return (
        rtype.plural == "pods" and bool(obj.get("spec", {}).get("nodeName")) and grace_period != 0
    )


def _essence(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as stored, less what every write stamps (resourceVersion, managedFields times)."""
    meta = dict(obj["metadata"])
    meta.pop("resourceVersion", None)
    fields = meta.pop("managedFields", None) or []
    meta["managedFields"] = [{k: v for k, v in f.items() if k != "time"} for f in fields]
    return {**obj, "metadata": meta}


def _same_object(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return _essence(old) == _essence(new)
