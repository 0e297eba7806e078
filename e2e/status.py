"""Reading how far the operator got with a model: its plan, and the children it owns."""

from __future__ import annotations

from typing import Any

from .kubectl import Kubectl, condition
from .manifests import MODEL_LABEL

Manifest = dict[str, Any]
CHILDREN = ("deployments.apps", "services", "poddisruptionbudgets.policy", "jobs.batch")


def planned(k: Kubectl, name: str) -> Manifest | None:
    """The model once the operator has planned its current generation and deployed it."""
    model = k.get("inferencemodel", name)
    status = (model or {}).get("status") or {}
    if model is None or not status.get("precision") or k.get("deployment", name) is None:
        return None
    return model if status.get("observedGeneration") == model["metadata"]["generation"] else None


def children(k: Kubectl, model: str) -> dict[str, list[str]]:
    """The uids of every object labelled as the model's, by kind."""
    return {
        kind: sorted(i["metadata"]["uid"] for i in k.items(kind, f"{MODEL_LABEL}={model}"))
        for kind in CHILDREN
    }


def readiness(k: Kubectl, name: str) -> str:
    """The model's Ready condition in words, to explain a wait that timed out."""
    ready = condition(k.get("inferencemodel", name), "Ready")
    if not ready:
        return f"{name} has no Ready condition yet"
    return f"{name} Ready={ready['status']} ({ready.get('reason')}): {ready.get('message')}"


def events(k: Kubectl, name: str, reason: str) -> list[Manifest]:
    """Events about the object `name` with that reason."""
    found = k.items("events", fields=f"involvedObject.name={name}")
    return [e for e in found if e.get("reason") == reason]
