"""The serving children: a Deployment running `tierwise-runtime serve`, its Service and PDB."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api import InferenceModel, Precision, TierClass
from ..planner.candidates import CandidateKey
from ..settings import Settings
from .adapters import adapter_mount
from .common import (
    CANDIDATE_ANNOTATION,
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    Manifest,
    object_meta,
    selector_labels,
)
from .volumes import api_key_storage, model_storage, offload_storage, scratch_storage

COMPONENT = "serving"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Placement:
    """Where and how the model runs: what the planner decided, in the terms a pod needs."""

    variant: str
    source_uri: str
    precision: Precision
    tier_class: TierClass
    replicas: int
    memory_request_bytes: int
    cpu_request: float | None = None
    gpu: bool = False
    """Whether each replica holds one `nvidia.com/gpu`."""
    max_batch: int | None = None
    """Cap on the runtime's dynamic batch (decoders: the KV cache is sized for it)."""

    @property
    def candidate(self) -> str:
        """The name status, events and failure feedback use (`int8/cpu-large`)."""
        return str(CandidateKey(self.variant, self.precision, self.tier_class.name))


def build_deployment(model: InferenceModel, placement: Placement, settings: Settings) -> Manifest:
    namespace = model.metadata.namespace or "default"
    offload, offload_dir = offload_storage(placement.tier_class, namespace, model.name)
    keys, key_file = api_key_storage(settings.runtime_api_key_secret)
    adapters = adapter_mount(model, settings.model_mount_root)
    storage = (
        model_storage([placement.source_uri], settings.model_mount_root)
        .merge(offload)
        .merge(scratch_storage())
        .merge(keys)
        .merge(adapters.storage)
    )
    args = [
        "serve",
        "--model", placement.source_uri,
        "--name", model.name,
        "--precision", str(placement.precision),
        "--device", "cuda" if placement.gpu else "cpu",
        "--port", str(settings.runtime_port),
    ]  # fmt: skip
    if offload_dir:
        args += ["--offload-dir", offload_dir]
    if placement.max_batch:
        args += ["--max-batch", str(placement.max_batch)]
    if key_file:
        args += ["--api-key-file", key_file]
    args += adapters.args
    container = {
        "name": "runtime",
        "image": settings.runtime_image_cuda if placement.gpu else settings.runtime_image,
        "args": args,
        "ports": [{"name": "http", "containerPort": settings.runtime_port, "protocol": "TCP"}],
        "env": storage.env,
        "resources": _resources(placement),
        "volumeMounts": storage.mounts,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        # Loading and warming a model can take minutes; liveness waits for startup.
        "startupProbe": _probe("/healthz", period=5, failures=120),
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
    }
    labels = selector_labels(model, COMPONENT)
    pod_labels = {**labels, "tierwise.dev/tier-class": placement.tier_class.name}
    spec = placement.tier_class.spec
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": storage.volumes,
        "securityContext": POD_SECURITY_CONTEXT,
        "nodeSelector": dict(spec.node_selector),
        "tolerations": [t.to_wire() for t in spec.tolerations],
        "terminationGracePeriodSeconds": 60,
        "enableServiceLinks": False,
        # The runtime never calls the Kubernetes API: a token it holds could only leak.
        "automountServiceAccountToken": False,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(model, model.name, COMPONENT),
        "spec": {
            "replicas": placement.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": labels},
            # A model keeps serving while it moves tier: new pods must be ready
            # before an old one goes.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        CANDIDATE_ANNOTATION: placement.candidate,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(settings.runtime_port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def _resources(placement: Placement) -> dict[str, Any]:
    memory = str(placement.memory_request_bytes)
    requests: dict[str, str] = {"memory": memory}
    # The memory limit equals the request: a replica that outgrows its plan is
    # OOMKilled and reported, instead of squeezing its neighbours.
    limits: dict[str, str] = {"memory": memory}
    if placement.cpu_request:
        requests["cpu"] = f"{round(placement.cpu_request * 1000)}m"
    if placement.gpu:
        requests[GPU_RESOURCE] = "1"
        limits[GPU_RESOURCE] = "1"
    return {"requests": requests, "limits": limits}


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def build_service(model: InferenceModel, settings: Settings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(model, model.name, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(model, COMPONENT),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_pdb(model: InferenceModel, placement: Placement) -> Manifest | None:
    """With several replicas, voluntary disruptions take at most one at a time."""
    if placement.replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(model, model.name, COMPONENT),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(model, COMPONENT)},
        },
    }
