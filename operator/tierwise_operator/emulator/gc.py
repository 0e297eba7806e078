"""Garbage collection by ownerReferences, in the background like the kube-controller-manager.

When an owner goes, its dependents go too (background cascade), or lose the
reference when the owner was deleted with `propagationPolicy=Orphan`. A
dependent whose owners are all absent when it appears is deleted as well.
Foreground deletion is served as background: owners do not wait for their
dependents.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .controllers.base import Controller
from .registry import ResourceType
from .storage import Event


class GarbageCollector(Controller):
    """Deletes dependents of deleted owners, one owner uid per work item."""

    name = "garbage-collector"

    def wants(self, event: Event) -> list[str]:
        uid = event.object["metadata"]["uid"]
        if event.type == "DELETED":
            return [uid]
        refs = event.object["metadata"].get("ownerReferences") or []
        if event.type == "ADDED" and refs and not any(self._owner_exists(r) for r in refs):
            return [r["uid"] for r in refs]
        return []

    def _owner_exists(self, ref: dict[str, Any]) -> bool:
        return self.api.store.by_uid(ref.get("uid", "")) is not None

    async def reconcile(self, owner_uid: str) -> None:
        if self.api.store.by_uid(owner_uid) is not None:
            return  # the owner exists (again): nothing to collect
        orphan = owner_uid in self.api.orphaned
        for rtype, obj in self._dependents(owner_uid):
            if orphan:
                self._drop_reference(rtype, obj, owner_uid)
            elif not any(self._owner_exists(r) for r in obj["metadata"]["ownerReferences"]):
                self._delete(rtype, obj)
        self.api.orphaned.discard(owner_uid)

    def _dependents(self, owner_uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        found = []
        for rtype in self.api.registry:
            for obj in self.api.store.peek(rtype):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs):
                    found.append((rtype, obj))
        return found

    def _drop_reference(self, rtype: ResourceType, obj: dict[str, Any], owner_uid: str) -> None:
        meta = obj["metadata"]
        refs = [r for r in meta["ownerReferences"] if r.get("uid") != owner_uid]
        patch = {"metadata": {"ownerReferences": refs or None}}
        self.api.patch(
            rtype,
            meta.get("namespace"),
            meta["name"],
            "application/merge-patch+json",
            patch,
            manager=self.name,
        )

    def _delete(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.api.delete(rtype, meta.get("namespace"), meta["name"], propagation="Background")
        except errors.ApiError as exc:
            if exc.status != 404:
                raise
