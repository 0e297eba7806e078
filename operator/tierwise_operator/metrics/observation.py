"""What one collection of live metrics saw: memory per node, traffic per model, and its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ModelKey = tuple[str, str]
"""(namespace, name) of an InferenceModel."""


@dataclass(frozen=True)
class NodeMemory:
    """Free memory on one node: host memory and each GPU's free device memory."""

    host_available_bytes: int | None = None
    gpu_free_bytes: tuple[int, ...] = ()
    """One entry per device, in device order."""
    gpu_total_bytes: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelTraffic:
    """Observed load on a model's replicas over the query window."""

    requests_per_second: float
    latency_p99_seconds: float | None = None


@dataclass(frozen=True)
class Observation:
    """One collection. `available` is False when the source failed or returned nothing."""

    at: datetime
    source: str
    """`prometheus`, `kubernetes` (capacity only) or `runtime` (local mode)."""
    available: bool
    reason: str
    """CamelCase reason for the MetricsAvailable condition."""
    message: str
    nodes: dict[str, NodeMemory] = field(default_factory=dict)
    traffic: dict[ModelKey, ModelTraffic] = field(default_factory=dict)
