"""The planner's answer for one model: what to run, what changed, why, and the status to write."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..api import (
    AccuracyStatus,
    CostStatus,
    Decision,
    MemoryStatus,
    Percentage,
    Precision,
    Price,
    RejectedCandidate,
    ReplicaRecommendation,
    TierKind,
)
from .cost import money, per_1k
from .evaluate import Evaluation
from .snapshot import Recommendation

if TYPE_CHECKING:
    from .displacement import Displacement


class ChangeKind(StrEnum):
    INITIAL = "initial"
    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    RE_TIER = "re-tier"
    RE_PRECISION = "re-precision"
    RE_VARIANT = "re-variant"
    KEPT = "kept"
    INFEASIBLE = "infeasible"
    DISPLACED = "displaced"
    """Other models hold all the room it could run in: scaled to zero until room frees."""


@dataclass(frozen=True)
class Plan:
    """One model's decision; `chosen` is None only when nothing runs and nothing is feasible."""

    model: str
    change: ChangeKind
    chosen: Evaluation | None
    replicas: int
    reason: str
    rejected: tuple[RejectedCandidate, ...]
    decided_at: datetime
    budget: float
    traffic_rps: float
    baseline_per_hour: Decimal | None
    tier_changed_at: datetime | None
    scaled_at: datetime | None
    recommendations: tuple[Recommendation, ...]
    solver: str | None = None
    displacement: Displacement | None = None
    """Set when the fleet round gave the model less than its own best option."""
    preempted: tuple[str, ...] = ()
    """Models this plan takes room from (they serve there now and are of lower priority)."""

    def with_fleet(self, displacement: Displacement | None, preempted: tuple[str, ...]) -> Plan:
        """The plan with what the fleet round says of it: who holds the room it wanted, whom
        it takes room from; the reason says so too."""
        if displacement is None and not preempted:
            return self
        reason = self.reason
        if displacement is not None:
            reason = (
                displacement.message()
                if self.replicas == 0
                else f"{reason}; {displacement.message()}"
            )
        if preempted:
            reason += f"; takes the room of {', '.join(preempted)} (lower priority)"
        return replace(self, displacement=displacement, preempted=preempted, reason=reason)

    @property
    def feasible(self) -> bool:
        """Whether the model gets room to serve (a displaced one waits at zero replicas)."""
        return self.change not in (ChangeKind.INFEASIBLE, ChangeKind.DISPLACED)

    @property
    def changed(self) -> bool:
        """Whether the Deployment must change (anything but `kept`; `infeasible` keeps it too)."""
        return self.change not in (ChangeKind.KEPT, ChangeKind.INFEASIBLE)

    @property
    def estimated(self) -> bool:
        return bool(self.chosen and self.chosen.figures.estimated)

    @property
    def variant(self) -> str | None:
        return self.chosen.key.variant if self.chosen else None

    @property
    def precision(self) -> Precision | None:
        return self.chosen.key.precision if self.chosen else None

    @property
    def tier_class(self) -> str | None:
        return self.chosen.key.tier_class if self.chosen else None

    @property
    def tier(self) -> TierKind | None:
        return self.chosen.tier.spec.kind if self.chosen else None

    @property
    def needs_gpu(self) -> bool:
        """Whether each replica requests one `nvidia.com/gpu`."""
        return bool(self.chosen and self.chosen.need and self.chosen.need.gpu)

    @property
    def memory_request_bytes(self) -> int | None:
        """Memory each replica holds in its tier (device memory on gpu)."""
        return self.chosen.need.tier_bytes if self.chosen and self.chosen.need else None

    @property
    def host_memory_request_bytes(self) -> int | None:
        """The pod's `resources.requests.memory`."""
        return self.chosen.need.host_bytes if self.chosen and self.chosen.need else None

    @property
    def cpu_request(self) -> float | None:
        return self.chosen.need.cpu if self.chosen and self.chosen.need else None

    @property
    def max_batch(self) -> int | None:
        """The batch the runtime should cap dynamic batching at (the KV cache is sized for it)."""
        return self.chosen.max_batch if self.chosen else None

    @property
    def per_hour(self) -> Decimal | None:
        return self.chosen.per_hour if self.chosen else None

    @property
    def per_1k(self) -> Decimal | None:
        return self._per_1k(self.per_hour)

    @property
    def baseline_per_1k(self) -> Decimal | None:
        return self._per_1k(self.baseline_per_hour)

    def _per_1k(self, per_hour: Decimal | None) -> Decimal | None:
        if per_hour is None:
            return None
        if self.traffic_rps > 0:
            return per_1k(per_hour, self.traffic_rps)
        # Without traffic, quote the price of an inference at full planned capacity.
        capacity = self.replicas * self.chosen.capacity_rps if self.chosen else 0.0
        return per_1k(per_hour, capacity)

    def decision(self) -> Decision:
        return Decision(
            reason=self.reason,
            estimated=self.estimated,
            rejected=list(self.rejected),
            decided_at=_rfc3339(self.decided_at),
            change=self.change.value,
            solver=self.solver,
            displaced_by=list(self.displacement.by) if self.displacement else [],
        )

    def status_fields(self) -> dict[str, Any]:
        """camelCase status fields to patch, in wire form; figures only when something runs."""
        fields: dict[str, Any] = {
            "decision": self.decision().to_wire(),
            "replicaRecommendations": [
                ReplicaRecommendation(at=_rfc3339(r.at), replicas=r.replicas).to_wire()
                for r in self.recommendations
            ],
        }
        if self.chosen is None:
            return fields
        fields |= {
            "variant": self.variant,
            "precision": str(self.precision),
            "tier": str(self.tier),
            "tierClass": self.tier_class,
            "replicas": self.replicas,
            "tierChangedAt": _rfc3339(self.tier_changed_at),
            "scaledAt": _rfc3339(self.scaled_at),
        }
        if (accuracy := self._accuracy()) is not None:
            fields["accuracy"] = accuracy.to_wire()
        if self.chosen.need is not None:
            memory = MemoryStatus(
                weight_bytes=self.chosen.figures.weight_bytes,
                request_bytes=self.chosen.need.tier_bytes,
            )
            fields["memory"] = memory.to_wire()
        if (cost := self.cost_status()) is not None:
            fields["cost"] = cost.to_wire()
        return {k: v for k, v in fields.items() if v is not None}

    def _accuracy(self) -> AccuracyStatus | None:
        if self.chosen is None or self.chosen.figures.accuracy_delta is None:
            return None
        return AccuracyStatus(
            delta=Percentage.of(round(self.chosen.figures.accuracy_delta, 6)),
            budget=Percentage.of(self.budget),
        )

    def cost_status(self) -> CostStatus | None:
        if self.per_hour is None or (per1k := self.per_1k) is None:
            return None
        baseline = self.baseline_per_1k
        return CostStatus(
            per_hour=Price.parse(money(self.per_hour)),
            per1k_inferences=Price.parse(money(per1k)),
            baseline_per1k_inferences=None if baseline is None else Price.parse(money(baseline)),
        )


def _rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
