"""Everything the planner works out for one model before capacity is shared: demand,
every candidate's evaluation, the current plan's standing and the fp16-on-GPU baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from ..api import PRIMARY_VARIANT, InferenceModel, Precision, TierClass, TierKind
from . import explain
from .candidates import CandidateKey, enumerate_candidates, missing_tiers
from .capacity import TierPool
from .evaluate import Demand, Evaluation, Stage, evaluate, size
from .figures import FigureSource
from .hysteresis import breach_to_answer, stabilise
from .settings import PlannerSettings
from .snapshot import CurrentPlan, MetricsSnapshot, Recommendation, model_key
from .wake import replica_floor, with_floor


@dataclass(frozen=True)
class ModelContext:
    """One model's candidates, evaluated; the current one at its stabilised replica count."""

    model: InferenceModel
    key: str
    demand: Demand
    current: CurrentPlan
    evaluations: tuple[Evaluation, ...]
    current_needed: Evaluation | None
    """The current candidate at the replicas traffic needs now (what a switch is compared to)."""
    history: tuple[Recommendation, ...]
    baseline_per_hour: Decimal | None
    missing_tiers: tuple[str, ...]
    woken: bool = False
    """A recent demand signal raised the replica floor above the spec's (wake from zero)."""

    @property
    def current_evaluation(self) -> Evaluation | None:
        key = self.current.key
        return next((e for e in self.evaluations if e.key == key), None) if key else None


def demand_for(
    model: InferenceModel,
    snapshot: MetricsSnapshot | None,
    now: datetime,
    settings: PlannerSettings,
) -> Demand:
    """Traffic = max(spec floor, observed); planned rps adds headroom and the throughput SLO."""
    spec = model.spec
    metrics = snapshot.metrics_for(model_key(model)) if snapshot else None
    observed = metrics.request_rate if metrics else None
    traffic = max(spec.traffic.target_rps or 0.0, observed or 0.0)
    rps = max(traffic * (1 + float(spec.traffic.headroom)), spec.slo.min_throughput or 0.0)
    ages = [now - snapshot.taken_at] if snapshot else []
    ages += [now - metrics.observed_at] if metrics else []
    p99 = metrics.latency_p99 if metrics else None
    return Demand(
        traffic_rps=traffic,
        rps=rps,
        observed_rps=observed,
        observed_p99_s=None if p99 is None else float(p99),
        observed_at=metrics.observed_at if metrics else None,
        stale=any(age > settings.metrics_max_age for age in ages),
    )


def prepare(
    model: InferenceModel,
    tiers: Sequence[TierClass],
    *,
    snapshot: MetricsSnapshot | None,
    now: datetime,
    settings: PlannerSettings,
    current: CurrentPlan | None = None,
) -> ModelContext:
    """Evaluate every candidate of the model; the current plan defaults to its status."""
    current = current if current is not None else CurrentPlan.from_model(model)
    floor = replica_floor(model, now, settings.wake_hold)
    woken = floor > model.spec.replicas.min
    model = with_floor(model, floor)
    demand = demand_for(model, snapshot, now, settings)
    source = FigureSource(model)
    failed = {f.key: f for f in current.failed}
    evaluations = [
        evaluate(
            model,
            c,
            source.figures(c.key.variant, c.key.precision, c.tier),
            demand,
            failed=failed,
            now=now,
        )
        for c in enumerate_candidates(model, tiers)
    ]
    needed: Evaluation | None = None
    history: tuple[Recommendation, ...] = (Recommendation(now, 0),)
    for i, evaluation in enumerate(evaluations):
        if evaluation.key == current.key:
            evaluations[i], needed, history = _keep_current(
                model, evaluation, current=current, demand=demand, now=now, settings=settings
            )
    return ModelContext(
        model=model,
        key=model_key(model),
        demand=demand,
        current=current,
        evaluations=tuple(evaluations),
        current_needed=needed,
        history=history,
        baseline_per_hour=baseline_per_hour(model, tiers, demand, source),
        missing_tiers=tuple(missing_tiers(model, tiers)),
        woken=woken,
    )


def _keep_current(
    model: InferenceModel,
    evaluation: Evaluation,
    *,
    current: CurrentPlan,
    demand: Demand,
    now: datetime,
    settings: PlannerSettings,
) -> tuple[Evaluation, Evaluation | None, tuple[Recommendation, ...]]:
    """The current candidate: react to a measured SLO breach, then stabilise scale-down."""
    if evaluation.need is None or evaluation.stage < Stage.REPLICAS:
        return evaluation, None, (Recommendation(now, evaluation.replicas),)
    needed = evaluation.replicas
    slo = model.spec.slo.latency_p99
    breach = breach_to_answer(current, demand, None if slo is None else float(slo), settings)
    if breach and needed <= current.replicas:
        needed = current.replicas + 1  # the latency model under-predicts: add one, HPA-style
    scaling = stabilise(current, needed, now, settings)
    at_needed = evaluation.with_replicas(needed)
    kept = evaluation.with_replicas(scaling.replicas)
    most = model.spec.replicas.max
    if needed > most and evaluation.stage is Stage.FEASIBLE:
        why = (
            f"observed p99 {explain.seconds(demand.observed_p99_s)} > SLO "
            f"{explain.seconds(slo)} at the max of {most} replicas"
        )
        kept = kept.broken(Stage.REPLICAS, why)
    return kept, replace(at_needed, stage=kept.stage, why=kept.why), scaling.history


def baseline_per_hour(
    model: InferenceModel, tiers: Sequence[TierClass], demand: Demand, source: FigureSource
) -> Decimal | None:
    """The same traffic at fp16 on the cheapest GPU TierClass (capacity and budget ignored;
    priced at full throughput where fp16 misses the latency SLO)."""
    costs = []
    slo = model.spec.slo.latency_p99
    for tier in tiers:
        figures = source.figures(PRIMARY_VARIANT, Precision.FP16, tier)
        if tier.spec.kind is not TierKind.GPU or figures.missing or figures.curve is None:
            continue
        key = CandidateKey(PRIMARY_VARIANT, Precision.FP16, tier.name)
        base = Evaluation(key, tier, figures, None, 1, 0.0, 0, None, None, Stage.FEASIBLE,
                          demand_rps=demand.rps)  # fmt: skip
        sized = size(model, base, None if slo is None else float(slo))
        if sized.capacity_rps <= 0:
            sized = size(model, base, None)
        if sized.max_batch and sized.need and TierPool(tier, None).fits_a_node(sized.need):
            assert sized.per_hour is not None
            costs.append(sized.per_hour)
    return min(costs, default=None)
