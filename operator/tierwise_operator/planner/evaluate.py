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
from .capacity import ReplicaNeed, TierPool, batch_limit, replica_need
from .cost import replica_hour, replica_hour_estimate
from .figures import Figures
from .snapshot import FailedKey

#: More replicas than any plan would run; counts beyond it are reported as "over a million".
REPLICA_CEILING = 1_000_000


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
    observed_at: datetime | None = None
    """When the observed figures were measured (a breach only counts once measured after
    the last change had time to show)."""
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
            p99 = self.figures.curve.predicted_p99(self.demand_rps / replicas, self.max_batch)
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
        return base.broken(
            Stage.ACCURACY, explain.accuracy_unknown(candidate.key.variant, candidate.key.precision)
        )
    if figures.accuracy_delta > budget + 1e-12:
        return base.broken(Stage.ACCURACY, explain.accuracy(figures.accuracy_delta, budget))
    if figures.adapter_problem is not None:
        return base.broken(Stage.ACCURACY, figures.adapter_problem)
    slo = model.spec.slo.latency_p99
    sized = size(model, base, None if slo is None else float(slo))
    assert sized.need is not None
    if sized.max_batch == 0 or not TierPool(candidate.tier, None).fits_a_node(sized.need):
        return sized.broken(Stage.MEMORY, explain.too_big(sized.need, candidate.tier))
    if sized.capacity_rps <= 0:
        return sized.broken(
            Stage.LATENCY,
            explain.too_slow(figures.curve.batches[0], figures.curve.fastest_p99_s, slo),
        )
    if sized.replicas > model.spec.replicas.max:
        return sized.broken(Stage.REPLICAS, explain.too_many(sized, model.spec.replicas.max, slo))
    return sized


def size(model: InferenceModel, base: Evaluation, slo_s: float | None) -> Evaluation:
    """Replicas and batch cap at the lowest cost: a bigger batch serves more per replica but,
    for decoders, reserves more KV cache; every measured batch that fits memory is tried.
    Caps that keep the replicas within `replicas.max` come first; when none does, the cap
    needing the fewest replicas is kept (the closest to fitting, as reported).
    `max_batch` is 0 when not even one sequence fits next to the weights."""
    curve, figures, tier = base.figures.curve, base.figures, base.tier
    assert curve is not None
    context = model.spec.context_length
    limit = batch_limit(figures, tier, context)
    if limit < 1:
        return replace(base, need=replica_need(figures, tier.spec.kind, context, 1), max_batch=0)
    options = curve.frontier(slo_s, limit)
    if not figures.kv_bytes_per_token:  # memory does not grow with the batch: take the most
        options = [max(options)]
    most = model.spec.replicas.max
    best: tuple[tuple[bool, int, float, float], float, float] | None = None
    for capacity, batch in options:
        need = replica_need(figures, tier.spec.kind, context, math.ceil(batch))
        replicas = _replicas_for(model, base.demand_rps, capacity)
        headroom = replicas * capacity / base.demand_rps if base.demand_rps else math.inf
        over = max(0, replicas - most)
        rank = (capacity <= 0, over, replicas * replica_hour_estimate(tier, need), -headroom)
        if best is None or rank < best[0]:
            best = (rank, capacity, batch)
    assert best is not None
    _, capacity, batch = best
    need = replica_need(figures, tier.spec.kind, context, math.ceil(batch))
    sized = replace(base, need=need, max_batch=math.ceil(batch), capacity_rps=capacity)
    return sized.with_replicas(_replicas_for(model, base.demand_rps, capacity))


def _replicas_for(model: InferenceModel, rps: float, capacity: float) -> int:
    if capacity <= 0:
        return max(model.spec.replicas.min, 1 if rps > 0 else 0)
    # A capacity near zero would ask for astronomically many replicas: stop counting early.
    needed = min(math.ceil(rps / capacity - 1e-9), REPLICA_CEILING) if rps > 0 else 0
    return max(needed, model.spec.replicas.min)
