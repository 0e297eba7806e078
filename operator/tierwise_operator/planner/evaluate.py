"""Check one candidate against a model's constraints and work out its replicas and cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

from ..api import InferenceModel, TierClass
from . import explain
from .candidates import Candidate, CandidateKey
from .capacity import ReplicaNeed, TierPool, replica_need
from .cost import replica_hour
from .figures import Figures
from .snapshot import FailedKey


class Stage(IntEnum):
    """How far a candidate got through the constraints, in the order they are checked."""

    FAILED = 0
    FIGURES = 1
    ACCURACY = 2
    MEMORY = 3
    LATENCY = 4
    REPLICAS = 5
    CAPACITY = 6
    FEASIBLE = 7


@dataclass(frozen=True)
class Demand:
    """Traffic to plan for: `rps` includes headroom; `traffic_rps` is what cost per 1k uses."""

    traffic_rps: float
    rps: float
    observed_rps: float | None = None
    observed_p99_s: float | None = None
    stale: bool = False


@dataclass(frozen=True)
class Evaluation:
    """A candidate's figures, replica count and cost, and the first constraint it broke."""

    key: CandidateKey
    tier: TierClass
    figures: Figures
    need: ReplicaNeed | None
    max_batch: int
    capacity_rps: float
    replicas: int
    predicted_p99_s: float | None
    per_hour: Decimal | None
    stage: Stage
    why: str | None = None

    @property
    def feasible(self) -> bool:
        return self.stage is Stage.FEASIBLE

    @property
    def headroom(self) -> float:
        """Capacity over planned demand (higher is safer); infinite without demand."""
        return self.replicas * self.capacity_rps / self.demand_rps if self.demand_rps else math.inf

    demand_rps: float = 0.0

    def broken(self, stage: Stage, why: str) -> Evaluation:
        return replace(self, stage=stage, why=why)

    def with_replicas(self, replicas: int) -> Evaluation:
        """The same candidate run at another replica count (cost follows)."""
        assert self.need is not None
        per_hour = replica_hour(self.tier, self.need) * replicas
        p99 = None
        if replicas and self.figures.curve is not None:
            p99 = self.figures.curve.predicted_p99(self.demand_rps / replicas)
        return replace(self, replicas=replicas, per_hour=per_hour, predicted_p99_s=p99)


def evaluate(
    model: InferenceModel,
    candidate: Candidate,
    figures: Figures,
    demand: Demand,
    *,
    failed: dict[CandidateKey, FailedKey],
    now: datetime,
) -> Evaluation:
    """The candidate checked against everything but the cluster's free capacity."""
    base = Evaluation(
        candidate.key, candidate.tier, figures, None, 1, 0.0, 0, None, None, Stage.FEASIBLE,
        demand_rps=demand.rps,
    )  # fmt: skip
    if (fail := failed.get(candidate.key)) and now < fail.retry_after:
        return base.broken(Stage.FAILED, explain.failed(fail))
    if figures.missing or figures.curve is None:
        return base.broken(Stage.FIGURES, figures.missing or "no latency figures")
    budget = float(model.spec.accuracy_budget.max_degradation)
    if figures.accuracy_delta is None:
        return base.broken(Stage.ACCURACY, explain.accuracy_unknown(candidate.key.variant))
    if figures.accuracy_delta > budget + 1e-12:
        return base.broken(Stage.ACCURACY, explain.accuracy(figures.accuracy_delta, budget))
    slo = model.spec.slo.latency_p99
    capacity, batch = figures.curve.capacity(None if slo is None else float(slo))
    need = replica_need(figures, candidate.kind, model.spec.context_length, math.ceil(batch))
    sized = replace(base, need=need, max_batch=math.ceil(batch), capacity_rps=capacity)
    sized = sized.with_replicas(_replicas_for(model, demand.rps, capacity))
    if not TierPool(candidate.tier, None).fits_a_node(need):
        return sized.broken(Stage.MEMORY, explain.too_big(need, candidate.tier))
    if capacity <= 0:
        return sized.broken(Stage.LATENCY, explain.too_slow(figures.curve.fastest_p99_s, slo))
    if sized.replicas > model.spec.replicas.max:
        return sized.broken(Stage.REPLICAS, explain.too_many(sized, model.spec.replicas.max, slo))
    return sized


def _replicas_for(model: InferenceModel, rps: float, capacity: float) -> int:
    if capacity <= 0:
        return max(model.spec.replicas.min, 1 if rps > 0 else 0)
    needed = math.ceil(rps / capacity - 1e-9) if rps > 0 else 0
    return max(needed, model.spec.replicas.min)
