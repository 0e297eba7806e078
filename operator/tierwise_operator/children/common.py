"""Labels, owner references and pod hardening shared by every child object."""

from __future__ import annotations

from typing import Any

from ..api import InferenceModel, defaults

MODEL_LABEL = "tierwise.dev/model"
CANDIDATE_ANNOTATION = "tierwise.dev/candidate"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY = {"app.kubernetes.io/managed-by": "tierwise"}

Manifest = dict[str, Any]


def selector_labels(model: InferenceModel, component: str) -> dict[str, str]:
    """Labels a selector may use: stable for the object's whole life (selectors are immutable)."""
    return {
        "app.kubernetes.io/name": "tierwise-runtime",
        "app.kubernetes.io/instance": model.name,
        COMPONENT_LABEL: component,
        MODEL_LABEL: model.name,
    }


def object_labels(model: InferenceModel, component: str) -> dict[str, str]:
    return {**selector_labels(model, component), **MANAGED_BY}


def owner_reference(model: InferenceModel) -> dict[str, Any]:
    """Makes the InferenceModel the controller of a child, so deleting it collects the child."""
    if not model.metadata.uid:
        raise ValueError(f"InferenceModel {model.name} has no uid: it must come from the API")
    return {
        "apiVersion": defaults.API_VERSION,
        "kind": "InferenceModel",
        "name": model.name,
        "uid": model.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(model: InferenceModel, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": model.metadata.namespace,
        "labels": object_labels(model, component),
        "ownerReferences": [owner_reference(model)],
    }


# The runtime needs no privileges: it reads weights, writes /tmp and listens.
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
