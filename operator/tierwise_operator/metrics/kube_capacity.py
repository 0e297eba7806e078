"""Capacity from the Kubernetes API alone: node allocatable minus the requests of pods on it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..api import Memory
from .observation import NodeMemory

GPU_RESOURCE = "nvidia.com/gpu"
_DONE = {"Succeeded", "Failed"}


def _memory(value: Any) -> int:
    return int(Memory.parse(value)) if value is not None else 0


def node_capacity(
    nodes: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    gpu_memory_per_device: dict[str, int],
) -> dict[str, NodeMemory]:
    """Free host memory and whole free GPUs per node, as the scheduler would count them.

    The API knows GPUs only as a count, so each free device is assumed to have
    the memory its TierClass declares (`gpu_memory_per_device`, by node name).
    """
    requested: dict[str, int] = {}
    gpus_used: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in _DONE:
            continue
        for container in pod["spec"].get("containers", []):
            reqs = (container.get("resources") or {}).get("requests") or {}
            requested[node] = requested.get(node, 0) + _memory(reqs.get("memory"))
            gpus_used[node] = gpus_used.get(node, 0) + int(reqs.get(GPU_RESOURCE, 0))
    out: dict[str, NodeMemory] = {}
    for node in nodes:
        name = node["metadata"]["name"]
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        host_free = max(0, _memory(allocatable.get("memory")) - requested.get(name, 0))
        free_gpus = max(0, int(allocatable.get(GPU_RESOURCE, 0)) - gpus_used.get(name, 0))
        per_device = gpu_memory_per_device.get(name, 0)
        out[name] = NodeMemory(
            host_available_bytes=host_free,
            gpu_free_bytes=tuple(per_device for _ in range(free_gpus)) if per_device else (),
        )
    return out
