"""The profile Job: `tierwise-runtime profile` on a node of the tier it measures for."""

from __future__ import annotations

import hashlib
import json

from ..api import InferenceModel, TierClass, TierKind
from ..settings import Settings
from .common import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    Manifest,
    object_meta,
    selector_labels,
)
from .profile_resources import profile_resources
from .volumes import eval_storage, model_storage, scratch_storage

COMPONENT = "profile"
PROFILE_KEY_LABEL = "tierwise.dev/profile-key"
DEVICE_LABEL = "tierwise.dev/profile-device"
TERMINATION_LOG = "/dev/termination-log"


def profile_key(model: InferenceModel, eval_digest: str = "") -> str:
    """Identity of what a profile measures: the checkpoints and the eval texts, nothing else.

    Budgets, SLOs and allowed precisions may change freely without re-profiling.
    """
    spec = model.spec
    ident = {
        "source": spec.model.source.uri,
        "architecture": str(spec.model.architecture),
        "task": str(spec.model.task),
        "variants": sorted((v.name, v.source.uri) for v in spec.model.variants),
        "eval": spec.accuracy_budget.eval_set.to_wire() if spec.accuracy_budget.eval_set else None,
        "evalDigest": eval_digest,
    }
    if spec.adapters:  # only then, so models without adapters keep the key they had
        ident["adapters"] = sorted((a.name, a.source.uri) for a in spec.adapters)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def device_for(tier: TierClass) -> str:
    return "cuda" if tier.spec.kind is TierKind.GPU else "cpu"


def job_name(model: InferenceModel, device: str, key: str) -> str:
    suffix = f"-profile-{device}-{key[:8]}"
    return model.name[: 63 - len(suffix)].rstrip("-") + suffix


def build_profile_job(
    model: InferenceModel, tier: TierClass, key: str, settings: Settings
) -> Manifest:
    """One Job per device class (cpu covers the cpu and offload tiers), placed like `tier`."""
    device = device_for(tier)
    spec = model.spec
    uris = [
        spec.model.source.uri,
        *(v.source.uri for v in spec.model.variants),
        *(a.source.uri for a in spec.adapters),
    ]
    eval_ref = (
        spec.accuracy_budget.eval_set.config_map_ref if spec.accuracy_budget.eval_set else None
    )
    evals, eval_path = eval_storage(eval_ref)
    storage = model_storage(uris, settings.model_mount_root).merge(evals).merge(scratch_storage())
    args = [
        "profile",
        "--model", spec.model.source.uri,
        "--device", device,
        "--out", "/tmp/profile.json",
        "--termination-log", TERMINATION_LOG,
    ]  # fmt: skip
    for variant in spec.model.variants:
        args += ["--variant", f"{variant.name}={variant.source.uri}"]
    for adapter in spec.adapters:
        args += ["--adapter", f"{adapter.name}={adapter.source.uri}"]
    if eval_path:
        args += ["--eval", eval_path]
    args += list(settings.profile_args)
    resources = profile_resources(model, device)
    labels = {**selector_labels(model, COMPONENT), PROFILE_KEY_LABEL: key, DEVICE_LABEL: device}
    meta = object_meta(model, job_name(model, device, key), COMPONENT)
    meta["labels"] = {**meta["labels"], PROFILE_KEY_LABEL: key, DEVICE_LABEL: device}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": int(settings.profile_timeout),
            "ttlSecondsAfterFinished": 24 * 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "profile",
                            "image": settings.runtime_image_cuda
                            if device == "cuda"
                            else settings.runtime_image,
                            "args": args,
                            "env": storage.env,
                            "resources": resources,
                            "volumeMounts": storage.mounts,
                            "securityContext": CONTAINER_SECURITY_CONTEXT,
                            # The compact profile is read back from the pod's status.
                            "terminationMessagePath": TERMINATION_LOG,
                            "terminationMessagePolicy": "File",
                        }
                    ],
                    "volumes": storage.volumes,
                    "securityContext": POD_SECURITY_CONTEXT,
                    "nodeSelector": dict(tier.spec.node_selector),
                    "tolerations": [t.to_wire() for t in tier.spec.tolerations],
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                },
            },
        },
    }
