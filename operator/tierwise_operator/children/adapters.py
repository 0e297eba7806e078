"""The adapters ConfigMap and its mount: the list of LoRA adapters the replicas re-read, so
that editing spec.adapters never changes the pod template (and restarts nothing)."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

from ..api import InferenceModel
from .common import Manifest, object_meta
from .volumes import PodStorage, model_storage

COMPONENT = "adapters"
LIST_KEY = "adapters.json"
"""The key the runtime reads (`tierwise-runtime serve --adapters`)."""
MOUNT = "/etc/tierwise/adapters"
VOLUME = "adapters-list"


def config_map_name(model: InferenceModel) -> str:
    return model.name[:54].rstrip("-") + "-adapters"


def adapter_list(model: InferenceModel, excluded: frozenset[str] = frozenset()) -> str:
    """The list file's text: stable (sorted keys, spec order) so a re-apply changes nothing."""
    entries = [
        {"name": a.name, "source": a.source.uri}
        for a in model.spec.adapters
        if a.name not in excluded
    ]
    return json.dumps({"adapters": entries}, sort_keys=True, indent=1)


def build_adapters_config_map(
    model: InferenceModel, excluded: frozenset[str] = frozenset()
) -> Manifest | None:
    """The ConfigMap (owned by the model) holding the adapters list; None without adapters."""
    if not model.spec.adapters:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(model, config_map_name(model), COMPONENT),
        "data": {LIST_KEY: adapter_list(model, excluded)},
    }


@dataclass(frozen=True)
class AdapterMount:
    """What the serving pod needs for adapters: volumes, mounts and runtime arguments."""

    storage: PodStorage = field(default_factory=PodStorage)
    args: list[str] = field(default_factory=list)


def adapter_mount(model: InferenceModel, mount_root: str) -> AdapterMount:
    """The ConfigMap mounted as a folder (kubelet updates it in place; a subPath mount would
    never update), and the adapters' storage: one volume per pvc claim and per host folder
    holding file:// adapters, so adapters added beside existing ones change nothing."""
    if not model.spec.adapters:
        return AdapterMount()
    volume = {
        "name": VOLUME,
        "configMap": {"name": config_map_name(model), "optional": True},
    }
    mount = {"name": VOLUME, "mountPath": MOUNT, "readOnly": True}
    storage = PodStorage(volumes=[volume], mounts=[mount])
    roots = sorted({_root(a.source.uri) for a in model.spec.adapters})
    storage = storage.merge(model_storage(roots, mount_root))
    args = [
        "--adapters", f"{MOUNT}/{LIST_KEY}",
        "--max-adapters", str(model.spec.max_resident_adapters),
    ]  # fmt: skip
    return AdapterMount(storage, args)


def _root(uri: str) -> str:
    """What to mount for an adapter: its pvc claim, or the folder its file:// folder sits in."""
    if uri.startswith("file://"):
        return "file://" + posixpath.dirname(uri.removeprefix("file://").rstrip("/"))
    return uri
