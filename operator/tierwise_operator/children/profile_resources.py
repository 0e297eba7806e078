"""Requests and limits of a profile Job, sized from the model's own figures.

A profile Job without them is scheduled anywhere and may take a node's whole
memory: one tenant's profile could evict another's replicas. The profiler
holds one checkpoint at a time (the fp32 reference first, then each
candidate), so the fp32 weights of the largest checkpoint bound what it needs.
"""

from __future__ import annotations

from typing import Any

from ..api import InferenceModel, Precision
from ..planner.estimate import CPU_RUNTIME_OVERHEAD, DEFAULT_CPU_CORES, GiB, weight_bytes

#: Memory requested when no parameter count is known (spec or an earlier profile).
UNKNOWN_MODEL_MEMORY = 2 * GiB
#: Room over the fp32 weights: a quantized copy while converting, activations, KV cache.
WEIGHTS_FACTOR = 2.0
#: The limit over the request: a burst (tokenizing the eval set) is not fatal, a runaway is.
LIMIT_FACTOR = 2.0
#: Cores of a GPU profile (feeding the device) and of a cpu one (what a replica requests).
GPU_PROFILE_CORES = 2.0


def largest_parameters(model: InferenceModel) -> int | None:
    """The largest parameter count the spec or an earlier profile states, if any."""
    spec = model.spec.model
    counts = [spec.parameters, *(v.parameters for v in spec.variants)]
    status = model.status
    if status is not None and status.profile is not None:
        counts.append(status.profile.model.parameters or None)
    known = [c for c in counts if c]
    return max(known) if known else None


def profile_memory_bytes(model: InferenceModel) -> int:
    parameters = largest_parameters(model)
    if parameters is None:
        return UNKNOWN_MODEL_MEMORY
    weights = weight_bytes(parameters, Precision.FP32)
    return int(weights * WEIGHTS_FACTOR) + CPU_RUNTIME_OVERHEAD


def profile_resources(model: InferenceModel, device: str) -> dict[str, Any]:
    """Requests and limits for the profile container on `device` (`cpu` or `cuda`)."""
    memory = profile_memory_bytes(model)
    cores = GPU_PROFILE_CORES if device == "cuda" else DEFAULT_CPU_CORES
    requests = {"cpu": _millicores(cores), "memory": str(memory)}
    limits = {"cpu": _millicores(cores * LIMIT_FACTOR), "memory": str(int(memory * LIMIT_FACTOR))}
    if device == "cuda":
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = "1"
    return {"requests": requests, "limits": limits}


def _millicores(cores: float) -> str:
    return f"{round(cores * 1000)}m"
