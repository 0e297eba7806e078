"""Volumes that bring a model's weights, its eval set and offload storage into a pod."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..api import ConfigMapKeyRef, TierClass
from .hostpaths import host_path

EVAL_MOUNT = "/eval"
API_KEY_MOUNT = "/var/run/tierwise/api-key"
API_KEY_ITEM = "api-key"


@dataclass
class PodStorage:
    """Volumes, mounts and env a pod needs; builders merge several of these."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, str]] = field(default_factory=list)

    def merge(self, other: PodStorage) -> PodStorage:
        names = {v["name"] for v in self.volumes}
        return PodStorage(
            volumes=self.volumes + [v for v in other.volumes if v["name"] not in names],
            mounts=self.mounts + [m for m in other.mounts if m["name"] not in names],
            env=self.env + [e for e in other.env if e not in self.env],
        )


def _volume_name(prefix: str, key: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")
    return f"{prefix}-{slug}"[:63].rstrip("-")


def model_storage(uris: list[str], mount_root: str) -> PodStorage:
    """pvc:// claims mount read-only under `mount_root`; file:// paths come from the node."""
    storage = PodStorage(env=[{"name": "TIERWISE_MODEL_ROOT", "value": mount_root}])
    for uri in uris:
        if uri.startswith("pvc://"):
            claim = uri.removeprefix("pvc://").split("/", 1)[0]
            name = _volume_name("model", claim)
            volume = {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
            mount = {"name": name, "mountPath": f"{mount_root}/{claim}", "readOnly": True}
        elif (path := host_path(uri)) is not None:
            # The reconcile has refused paths outside the admin's prefixes by now.
            name = _volume_name("model", path)
            volume = {"name": name, "hostPath": {"path": path}}
            mount = {"name": name, "mountPath": path, "readOnly": True}
        else:
            continue  # builtin:// weights ship inside the runtime image
        storage = storage.merge(PodStorage(volumes=[volume], mounts=[mount]))
    return storage


def eval_storage(ref: ConfigMapKeyRef | None) -> tuple[PodStorage, str | None]:
    """The eval set's ConfigMap key as a file, and that file's path (None: the bundled set)."""
    if ref is None:
        return PodStorage(), None
    volume = {
        "name": "eval",
        "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": ref.key}]},
    }
    mount = {"name": "eval", "mountPath": EVAL_MOUNT, "readOnly": True}
    return PodStorage(volumes=[volume], mounts=[mount]), f"{EVAL_MOUNT}/{ref.key}"


def offload_dir(root: str, namespace: str, name: str) -> str:
    """This model's own folder under the tier's offload root (namespaces hold no dots, so
    `namespace.name` is unique per model)."""
    return f"{root.rstrip('/')}/{namespace}.{name}"


def offload_storage(tier: TierClass, namespace: str, name: str) -> tuple[PodStorage, str | None]:
    """The model's own folder under the tier's local NVMe path, and that folder.

    Only that folder is mounted (read-write): a replica never sees, let alone
    overwrites, the weights another model maps from the same disk.
    """
    if tier.spec.offload is None:
        return PodStorage(), None
    own = offload_dir(tier.spec.offload.path, namespace, name)
    volume = {"name": "offload", "hostPath": {"path": own, "type": "DirectoryOrCreate"}}
    mount = {"name": "offload", "mountPath": own}
    return PodStorage(volumes=[volume], mounts=[mount]), own


def scratch_storage() -> PodStorage:
    """A writable /tmp, since the root filesystem is read-only."""
    return PodStorage(
        volumes=[{"name": "tmp", "emptyDir": {}}],
        mounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )


def api_key_storage(secret: str) -> tuple[PodStorage, str | None]:
    """The Secret's `api-key` as a file only the runtime's group reads, and that file's path.

    Not optional: a replica told to require a key but given none would serve
    everyone, so a missing Secret keeps the pod from starting instead.
    """
    if not secret:
        return PodStorage(), None
    volume = {
        "name": "api-key",
        "secret": {
            "secretName": secret,
            "items": [{"key": API_KEY_ITEM, "path": API_KEY_ITEM}],
            "defaultMode": 0o440,
        },
    }
    mount = {"name": "api-key", "mountPath": API_KEY_MOUNT, "readOnly": True}
    return PodStorage(volumes=[volume], mounts=[mount]), f"{API_KEY_MOUNT}/{API_KEY_ITEM}"
