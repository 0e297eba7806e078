"""Planner inputs read from the cluster: a metrics snapshot and the current plan of a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..api import InferenceModel, Memory
from ..api.quantities import Duration
from .candidates import CandidateKey


def model_key(model: InferenceModel) -> str:
    """`namespace/name`, the key metrics and placements use (`default` when unset)."""
    return f"{model.metadata.namespace or 'default'}/{model.name}"


class SnapshotModel(BaseModel):
    """camelCase on the wire like the API; unknown fields are errors; values are immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Device(SnapshotModel):
    """One accelerator of a node."""

    free: Memory
    """Device memory free now (DCGM_FI_DEV_FB_FREE)."""
    allocated: bool = False
    """True when a pod holds the device (`nvidia.com/gpu` is exclusive)."""


class NodeCapacity(SnapshotModel):
    """What one node of a TierClass can still take."""

    name: str
    tier_class: str
    free_memory: Memory
    """Host memory not requested by any pod (allocatable minus requests) or measured available."""
    free_cpu: float | None = Field(default=None, ge=0)
    """Allocatable cores not requested by any pod; unknown when unset (not checked)."""
    devices: list[Device] = Field(default_factory=list)
    """gpu tiers: each device, in index order."""


class Placement(SnapshotModel):
    """What one running replica of a model holds, so re-planning may count it as free."""

    model: str
    """`namespace/name` of the InferenceModel."""
    node: str
    memory: Memory
    """Memory the replica holds: device memory on gpu tiers, host memory otherwise."""
    cpu: float = Field(default=0.0, ge=0)
    device: int | None = Field(default=None, ge=0)
    """Index of the device it holds, on gpu tiers."""


class ModelMetrics(SnapshotModel):
    """Observed traffic and latency of one model."""

    namespace: str = "default"
    name: str
    request_rate: float | None = Field(default=None, ge=0)
    """Requests per second over the last window."""
    latency_p99: Duration | None = None
    observed_at: AwareDatetime

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class MetricsSnapshot(SnapshotModel):
    """The cluster as the planner sees it; `nodes` unset means capacity unknown (elastic)."""

    taken_at: AwareDatetime
    nodes: list[NodeCapacity] | None = None
    """Every node of every TierClass; a TierClass without nodes here has no capacity."""
    models: list[ModelMetrics] = Field(default_factory=list)
    placements: list[Placement] = Field(default_factory=list)

    def metrics_for(self, key: str) -> ModelMetrics | None:
        return next((m for m in self.models if m.key == key), None)


@dataclass(frozen=True)
class Recommendation:
    at: datetime
    replicas: int


@dataclass(frozen=True)
class FailedKey:
    """A candidate excluded until `retry_after` because its replicas failed."""

    key: CandidateKey
    reason: str
    retry_after: datetime


@dataclass(frozen=True)
class CurrentPlan:
    """What a model runs now, as read back from its status."""

    key: CandidateKey | None = None
    replicas: int = 0
    tier_changed_at: datetime | None = None
    scaled_at: datetime | None = None
    recommendations: tuple[Recommendation, ...] = ()
    failed: tuple[FailedKey, ...] = field(default_factory=tuple)

    @classmethod
    def from_model(cls, model: InferenceModel) -> CurrentPlan:
        """The plan recorded in `model.status`; an empty plan when there is none."""
        status = model.status
        if status is None:
            return cls()
        key = None
        if status.precision and status.tier_class:
            key = CandidateKey(status.variant or "primary", status.precision, status.tier_class)
        failed = tuple(
            FailedKey(CandidateKey.parse(f.candidate), f.reason, _time(f.retry_after))
            for f in status.failed_candidates
        )
        recs = tuple(
            Recommendation(_time(r.at), r.replicas) for r in status.replica_recommendations
        )
        return cls(
            key=key,
            replicas=status.replicas or 0,
            tier_changed_at=_optional_time(status.tier_changed_at),
            scaled_at=_optional_time(status.scaled_at),
            recommendations=recs,
            failed=failed,
        )


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f'"{text}" has no time zone (write it like 2026-11-25T10:00:00Z)')
    return value


def _optional_time(text: str | None) -> datetime | None:
    return _time(text) if text else None
