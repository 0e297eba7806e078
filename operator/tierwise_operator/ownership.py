"""Find the children a reconcile would write that belong to someone else (the I/O half).

The operator's watches only see objects labelled as tierwise's, so an object a
user made under the model's name is invisible to them: before the first write
to a child the watch does not know, it is read from the API. In steady state
every child is in the watch and this costs no request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .kube import Kind, Kube, KubeError, kind_of
from .reconcile.conflicts import conflict_message, hold_for_conflicts, owned_by
from .reconcile.core import previous_status
from .reconcile.world import Actions

Manifest = dict[str, Any]
LiveChild = Callable[[Manifest], Mapping[str, Any] | None]


async def foreign_children(
    kube: Kube, uid: str, actions: Actions, live_child: LiveChild
) -> list[str]:
    """A message for every child to be created or applied whose name an object not
    controlled by the model (uid) already holds; `live_child` is the watch's copy."""
    conflicts = []
    for manifest in [*actions.create, *actions.apply]:
        meta = manifest["metadata"]
        live = live_child(manifest)
        if live is None:
            live = await kube.get(kind_of(manifest), meta["name"], meta.get("namespace"))
        if live is not None and not owned_by(live, uid):
            conflicts.append(conflict_message(live, manifest["kind"]))
    return conflicts


async def hold_if_names_taken(
    kube: Kube, body: Mapping[str, Any], actions: Actions, live_child: LiveChild, now: datetime
) -> Actions:
    """The reconcile's actions, or only a NameConflict status when an object the model does
    not own holds one of its children's names."""
    meta = body["metadata"]
    conflicts = await foreign_children(kube, meta["uid"], actions, live_child)
    if not conflicts:
        return actions
    before = previous_status(dict(body)).conditions
    return hold_for_conflicts(actions, before, conflicts, meta.get("generation"), now)


async def delete_if_owned(kube: Kube, kind: Kind, name: str, namespace: str, uid: str) -> bool:
    """Delete a child only when the model controls it, and only that very object (a uid
    precondition: one recreated by someone else meanwhile is left alone)."""
    live = await kube.get(kind, name, namespace)
    if live is None or not owned_by(live, uid):
        return False
    try:
        return await kube.delete(kind, name, namespace, uid=live["metadata"].get("uid"))
    except KubeError as exc:
        if exc.status == 409:  # replaced since it was read: no longer ours to delete
            return False
        raise
