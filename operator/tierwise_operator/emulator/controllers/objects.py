"""Small facts about objects that controllers share: owners, readiness, termination."""

from __future__ import annotations

from typing import Any

from ..registry import ResourceType


def owner_reference(rtype: ResourceType, owner: dict[str, Any]) -> dict[str, Any]:
    """The controller reference a workload controller puts on what it creates."""
    return {
        "apiVersion": rtype.api_version,
        "kind": rtype.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return dict(ref)
    return None


def controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == owner["metadata"]["uid"] for r in refs)


def terminating(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    ready = condition(pod, "Ready")
    return not terminating(pod) and ready is not None and ready.get("status") == "True"


def pod_finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in {"Succeeded", "Failed"}


def key_of(obj: dict[str, Any]) -> tuple[str | None, str]:
    return obj["metadata"].get("namespace"), obj["metadata"]["name"]


def with_condition(
    conditions: list[dict[str, Any]], kind: str, *, status: str, reason: str, message: str, now: str
) -> list[dict[str, Any]]:
    """Conditions with one set; its lastTransitionTime moves only when its status flips."""
    old = next((c for c in conditions if c.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    new = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if old and {k: old.get(k) for k in new} == new and "lastUpdateTime" in old:
        new["lastUpdateTime"] = old["lastUpdateTime"]
    elif kind in {"Available", "Progressing"}:
        new["lastUpdateTime"] = now
    return [*(c for c in conditions if c.get("type") != kind), new]
