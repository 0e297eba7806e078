"""Per-model entry point: the cheapest feasible candidate, held steady by the hysteresis rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..api import InferenceModel, RejectedCandidate, TierClass
from . import explain
from .capacity import TierPool, build_pools
from .context import ModelContext, prepare
from .evaluate import Evaluation, Stage
from .hysteresis import ranking, switch_blocker, worth_switching
from .plan import ChangeKind, Plan
from .settings import DEFAULT_SETTINGS, PlannerSettings
from .snapshot import CurrentPlan, MetricsSnapshot, Recommendation
from .wake import WOKEN


def decide(
    model: InferenceModel,
    tiers: Sequence[TierClass],
    now: datetime,
    *,
    snapshot: MetricsSnapshot | None = None,
    current: CurrentPlan | None = None,
    settings: PlannerSettings = DEFAULT_SETTINGS,
) -> Plan:
    """Plan one model as if it had the cluster's free capacity (plus its own) to itself."""
    ctx = prepare(model, tiers, snapshot=snapshot, now=now, settings=settings, current=current)
    pools = build_pools(tiers, snapshot, movable={ctx.key: ctx.current.key})
    checked = [check_room(e, pools[e.key.tier_class]) for e in ctx.evaluations]
    return settle(ctx, checked, now, settings, solver="single")


def check_room(evaluation: Evaluation, pool: TierPool) -> Evaluation:
    """Whether the replicas fit the free memory of the tier's real nodes and devices."""
    if not evaluation.feasible or evaluation.need is None:
        return evaluation
    if pool.holds(evaluation.need, evaluation.replicas):
        return evaluation
    fits = pool.max_replicas(evaluation.need)
    return evaluation.broken(Stage.CAPACITY, explain.no_room(evaluation, pool, fits))


def settle(
    ctx: ModelContext,
    evaluations: Sequence[Evaluation],
    now: datetime,
    settings: PlannerSettings,
    *,
    solver: str | None = None,
    forced: Evaluation | None = None,
) -> Plan:
    """Choose among checked evaluations (or take the fleet's `forced` choice), apply
    hysteresis, and explain every alternative."""
    feasible = sorted((e for e in evaluations if e.feasible), key=ranking)
    current = next((e for e in evaluations if e.key == ctx.current.key), None)
    if not feasible and forced is None:
        return _infeasible(ctx, evaluations, current, now, solver=solver)
    best = feasible[0] if feasible else forced
    assert best is not None
    held_back = None
    if current is not None and current.feasible and current.key != best.key:
        held_back = _hold(ctx, best, current, now, settings)
    winner = forced or (current if held_back is not None and current is not None else best)
    if winner.key != (current.key if current else None):
        held_back = None
    rejected = _rejections(evaluations, winner, held_back)
    return _plan(ctx, winner, rejected, now, solver=solver)


def _hold(
    ctx: ModelContext,
    best: Evaluation,
    current: Evaluation,
    now: datetime,
    settings: PlannerSettings,
) -> str | None:
    """Why the current candidate stays although `best` is cheaper, or None if it should go."""
    if ctx.woken and ctx.current.replicas == 0:
        return None  # waking from zero disturbs nothing running: start on the cheapest
    slo = ctx.model.spec.slo.latency_p99
    blocker = switch_blocker(ctx.current, now, ctx.demand, slo, settings)
    if blocker is not None:
        return blocker
    compare = ctx.current_needed or current
    if worth_switching(best, compare, settings.switch_margin):
        return None
    return explain.saves_too_little(best, compare, settings.switch_margin)


def _rejections(
    evaluations: Sequence[Evaluation], winner: Evaluation, held_back: str | None
) -> list[RejectedCandidate]:
    out = []
    for e in evaluations:
        if e.key == winner.key:
            continue
        if not e.feasible:
            why = e.why or "infeasible"
        elif held_back is not None and e.per_hour is not None and winner.per_hour is not None \
                and e.per_hour < winner.per_hour:  # fmt: skip
            why = held_back
        else:
            why = explain.dearer(e, winner)
        out.append(RejectedCandidate(candidate=str(e.key), why=why))
    return out


def _plan(
    ctx: ModelContext,
    winner: Evaluation,
    rejected: list[RejectedCandidate],
    now: datetime,
    *,
    solver: str | None,
) -> Plan:
    current = ctx.current
    moved = winner.key != current.key
    history = ctx.history if not moved else (Recommendation(now, winner.replicas),)
    slo = ctx.model.spec.slo.latency_p99
    reason = explain.chosen(winner, slo, ctx.baseline_per_hour)
    return Plan(
        model=ctx.key,
        change=_change(current, winner),
        chosen=winner,
        replicas=winner.replicas,
        reason=f"{WOKEN}: {reason}" if ctx.woken and winner.replicas else reason,
        rejected=tuple(rejected + _missing(ctx)),
        decided_at=now,
        budget=float(ctx.model.spec.accuracy_budget.max_degradation),
        traffic_rps=ctx.demand.traffic_rps,
        baseline_per_hour=ctx.baseline_per_hour,
        tier_changed_at=now if moved else current.tier_changed_at,
        scaled_at=now if moved or winner.replicas != current.replicas else current.scaled_at,
        recommendations=history,
        solver=solver,
    )


def _change(current: CurrentPlan, winner: Evaluation) -> ChangeKind:
    if current.key is None:
        return ChangeKind.INITIAL
    if winner.key.tier_class != current.key.tier_class:
        return ChangeKind.RE_TIER
    if winner.key.variant != current.key.variant:
        return ChangeKind.RE_VARIANT
    if winner.key.precision != current.key.precision:
        return ChangeKind.RE_PRECISION
    if winner.replicas > current.replicas:
        return ChangeKind.SCALE_UP
    if winner.replicas < current.replicas:
        return ChangeKind.SCALE_DOWN
    return ChangeKind.KEPT


def _missing(ctx: ModelContext) -> list[RejectedCandidate]:
    return [
        RejectedCandidate(candidate=name, why="no TierClass of that name in the cluster")
        for name in ctx.missing_tiers
    ]


def closest(evaluations: Sequence[Evaluation]) -> Evaluation | None:
    """The candidate that got furthest through the constraints, cheapest first."""

    def progress(e: Evaluation) -> tuple[int, float, str]:
        cost = float(e.per_hour) if e.per_hour is not None else float("inf")
        return (-int(e.stage), cost, str(e.key))

    return min(evaluations, key=progress, default=None)


def _infeasible(
    ctx: ModelContext,
    evaluations: Sequence[Evaluation],
    current: Evaluation | None,
    now: datetime,
    *,
    solver: str | None,
) -> Plan:
    """Nothing fits: say what came closest, and keep serving on the current plan."""
    near = closest(evaluations)
    reason = "no feasible plan"
    if near is not None:
        reason += f"; closest: {near.key}: {near.why}"
    keep = current if current is not None and current.need is not None else None
    if keep is not None:
        reason += f"; keeps serving {keep.key} with {ctx.current.replicas} replica(s)"
        keep = keep.with_replicas(ctx.current.replicas)
    rejected = [RejectedCandidate(candidate=str(e.key), why=e.why or "") for e in evaluations]
    return Plan(
        model=ctx.key,
        change=ChangeKind.INFEASIBLE,
        chosen=keep,
        replicas=keep.replicas if keep else 0,
        reason=reason,
        rejected=tuple(rejected + _missing(ctx)),
        decided_at=now,
        budget=float(ctx.model.spec.accuracy_budget.max_degradation),
        traffic_rps=ctx.demand.traffic_rps,
        baseline_per_hour=ctx.baseline_per_hour,
        tier_changed_at=ctx.current.tier_changed_at,
        scaled_at=ctx.current.scaled_at,
        recommendations=ctx.history,
        solver=solver,
    )
