"""Planner inputs read from the cluster: a metrics snapshot and the current plan of a model."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

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
    candidate: str | None = None
    """The candidate the replica runs (`int8/cpu-large`); None when not known."""


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
        return self._metrics_by_key.get(key)

    def placements_of(self, model: str) -> list[Placement]:
        """What the replicas of `model` (`namespace/name`) hold now."""
        return self._placements_by_model.get(model, [])

    def holders(self, node: str, device: int | None) -> int:
        """How many replicas, of any model, hold `device` of `node` (None: host memory)."""
        return self._holders.get((node, device), 0)

    # A round re-plans every model against one snapshot: these indices keep each
    # plan's lookups proportional to its own model, not to the fleet (which made a
    # round quadratic in the number of models).
    @cached_property
    def _metrics_by_key(self) -> dict[str, ModelMetrics]:
        first: dict[str, ModelMetrics] = {}
        for metrics in self.models:
            first.setdefault(metrics.key, metrics)
        return first

    @cached_property
    def _placements_by_model(self) -> dict[str, list[Placement]]:
        grouped: dict[str, list[Placement]] = {}
        for placement in self.placements:
            grouped.setdefault(placement.model, []).append(placement)
        return grouped

    @cached_property
    def _holders(self) -> Counter[tuple[str, int | None]]:
        return Counter((p.node, p.device) for p in self.placements)

    @cached_property
    def nodes_by_name(self) -> list[NodeCapacity]:
        """`nodes` in name order (empty when capacity is unknown)."""
        return sorted(self.nodes or [], key=lambda n: n.name)

    def model_copy(self, *, update: Any = None, deep: bool = False) -> MetricsSnapshot:
        """A copy without the indices, which `update` may have made wrong."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _INDICES:
            copied.__dict__.pop(name, None)
        return copied


_INDICES = ("_metrics_by_key", "_placements_by_model", "_holders", "nodes_by_name")


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
