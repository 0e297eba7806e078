"""Fleet-wide planning: all models compete for the free rooms of bounded tiers; exact MILP
while it is small enough and proves optimal in time, the greedy heuristic beyond."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from ..api import InferenceModel, TierClass
from . import explain
from .capacity import TierPool, build_pools
from .context import ModelContext, prepare
from .decide import check_room, settle
from .displacement import Displacement, Holders, displacements, preempted_by
from .evaluate import Evaluation, Stage
from .exact import solve_exact, variable_count
from .greedy import solve_greedy
from .hysteresis import sticky_cost, switch_blocker
from .plan import ChangeKind, Plan
from .problem import FleetModel, Option, Problem, Solution, prune
from .settings import DEFAULT_SETTINGS, PlannerSettings
from .snapshot import CurrentPlan, MetricsSnapshot, model_key


@dataclass(frozen=True)
class FleetPlan:
    """Plans of every model and how they were found."""

    plans: tuple[Plan, ...]
    solver: str
    """`exact` (HiGHS proved the optimum) or `heuristic`."""
    solver_reason: str

    @property
    def per_hour(self) -> Decimal:
        return sum((p.per_hour or Decimal(0) for p in self.plans), Decimal(0))

    def plan_for(self, key: str) -> Plan:
        return next(p for p in self.plans if p.model == key)


def plan_fleet(
    models: Sequence[InferenceModel],
    tiers: Sequence[TierClass],
    now: datetime,
    *,
    snapshot: MetricsSnapshot | None = None,
    currents: Mapping[str, CurrentPlan] | None = None,
    settings: PlannerSettings = DEFAULT_SETTINGS,
    solver: str = "auto",
) -> FleetPlan:
    """Plan every model at once; `solver` is `auto`, `exact` or `heuristic`."""
    currents = currents or {}
    contexts = [
        prepare(
            m,
            tiers,
            snapshot=snapshot,
            now=now,
            settings=settings,
            current=currents.get(model_key(m)),
        )
        for m in models
    ]
    pools = build_pools(tiers, snapshot, movable={c.key: c.current.key for c in contexts})
    # Room is checked once, against everything free before any model is placed.
    checked = [[check_room(e, pools[e.key.tier_class]) for e in c.evaluations] for c in contexts]
    penalty = shortage_penalty(checked)
    fleet_models = [
        _fleet_model(c, e, pools, now, settings=settings, penalty=penalty)
        for c, e in zip(contexts, checked, strict=True)
    ]
    problem = Problem(tuple(m for m in fleet_models if m.options), pools)
    solution, used, why = _solve(problem, settings, solver)
    holders = Holders.of(problem.models, solution)
    displaced = displacements(problem.models, holders, solution)
    serving = {
        c.key: c.current.key.tier_class
        for c in contexts
        if c.current.key is not None and c.current.replicas > 0
    }
    preempted = preempted_by(displaced, serving)
    plans = tuple(
        _settle(
            c, e, solution, now, fleet_model=m, holders=holders, settings=settings, solver=used
        ).with_fleet(displaced.get(c.key), preempted.get(c.key, ()))
        for c, e, m in zip(contexts, checked, fleet_models, strict=True)
    )
    return FleetPlan(plans, used, why)


def shortage_penalty(checked: Sequence[Sequence[Evaluation]]) -> Decimal:
    """What one missing replica costs the solver: more than any full plan of the fleet, so a
    model runs short only where no assignment fits every model's full replica count."""
    dearest = (
        max((e.per_hour or Decimal(0) for e in es if e.feasible), default=Decimal(0))
        for es in checked
    )
    return 1 + sum(dearest, Decimal(0))


def _fleet_model(
    ctx: ModelContext,
    checked: list[Evaluation],
    pools: dict[str, TierPool],
    now: datetime,
    *,
    settings: PlannerSettings,
    penalty: Decimal,
) -> FleetModel:
    """The model's options: its feasible candidates, the current one's cost discounted by
    the switch margin; on bounded tiers, the same candidates with fewer replicas (down to the
    model's minimum) as dear fallbacks.

    A model that may not move now (dwell, a breach being answered, stale metrics) keeps its
    other candidates too, priced so high that the solver takes one only when the current one
    is no longer there to have: a model of higher priority needs its room.
    """
    feasible = [e for e in checked if e.feasible and e.need is not None]
    current = next((e for e in feasible if e.key == ctx.current.key), None)
    slo = ctx.model.spec.slo.latency_p99
    blocked = current is not None and switch_blocker(ctx.current, now, ctx.demand, slo, settings)
    forced_move = penalty / 2 if blocked else Decimal(0)

    def extra(e: Evaluation) -> Decimal:
        return Decimal(0) if e.key == ctx.current.key else forced_move

    options = [_option(e, pools, e is current, ctx, settings) for e in feasible]
    options = [replace(o, cost=o.cost + extra(o.evaluation)) for o in options]
    floor = max(1, ctx.model.spec.replicas.min)
    # Short of room for every replica, a candidate may still run fewer: also one the room
    # check refused because not all its replicas fit.
    options += [
        _short(e, replicas, pools, penalty=penalty, extra=extra(e))
        for e in ctx.evaluations
        if e.feasible and e.need is not None and pools[e.key.tier_class].nodes is not None
        for replicas in sorted({floor, e.replicas - 1})
        if floor <= replicas < e.replicas
    ]
    return FleetModel(ctx.key, ctx.model.spec.priority, prune(options))


def _option(
    e: Evaluation,
    pools: dict[str, TierPool],
    is_current: bool,
    ctx: ModelContext,
    settings: PlannerSettings,
) -> Option:
    assert e.need is not None and e.per_hour is not None
    cost = e.per_hour
    if is_current:
        cost = sticky_cost(ctx.current_needed or e, settings.switch_margin)
    return Option(e, e.need, e.replicas, cost, pools[e.key.tier_class].nodes is not None)


def _short(
    e: Evaluation, replicas: int, pools: dict[str, TierPool], *, penalty: Decimal, extra: Decimal
) -> Option:
    """`e` at fewer replicas, priced with a penalty for each replica it lacks."""
    assert e.need is not None
    fewer = e.with_replicas(replicas)
    assert fewer.per_hour is not None
    missing = e.replicas - replicas
    cost = fewer.per_hour + penalty * missing + extra
    bounded = pools[e.key.tier_class].nodes is not None
    return Option(fewer, e.need, replicas, cost, bounded, short=missing)


def _solve(problem: Problem, settings: PlannerSettings, solver: str) -> tuple[Solution, str, str]:
    contested = [m for m in problem.models if any(o.bounded for o in m.options)]
    if solver == "heuristic":
        return solve_greedy(problem), "heuristic", "asked for the heuristic"
    size = variable_count(problem)
    if not contested:
        return solve_greedy(problem), "exact", "no model competes for bounded capacity"
    if solver == "auto" and size > settings.exact_max_variables:
        return (
            solve_greedy(problem),
            "heuristic",
            f"{size} MILP variables > {settings.exact_max_variables}",
        )
    exact = solve_exact(problem, settings.exact_time_limit_s)
    if exact is not None:
        return exact, "exact", f"HiGHS proved the optimum ({size} variables)"
    greedy = solve_greedy(problem)
    return greedy, "heuristic", f"HiGHS found no proven optimum in {settings.exact_time_limit_s}s"


def _settle(
    ctx: ModelContext,
    checked: list[Evaluation],
    solution: Solution,
    now: datetime,
    *,
    fleet_model: FleetModel,
    holders: Holders,
    settings: PlannerSettings,
    solver: str,
) -> Plan:
    """The model's plan as the fleet assigned it; options the solver would have preferred
    but lost to other models' replicas say so. A model with options but no room is
    displaced: it gives back what it holds (zero replicas) rather than keep room that
    another model won."""
    assigned = solution.get(ctx.key)

    def lost(e: Evaluation) -> Evaluation:
        on_tier = holders.on(e.key.tier_class, ctx.key)
        higher = any(m.priority > fleet_model.priority for m in on_tier)
        why = explain.taken_by(e, [m.key for m in on_tier], by_priority=higher)
        return e.broken(Stage.CAPACITY, why)

    if assigned is None:
        plan = settle(ctx, [lost(e) if e.feasible else e for e in checked], now, settings,
                      solver=solver)  # fmt: skip
        return _displaced(ctx, plan, now) if fleet_model.options else plan
    winner = assigned.evaluation
    # What the solver weighed each full candidate at (margins and forced-move prices in).
    weighed = {o.evaluation.key: o.cost for o in fleet_model.options if not o.short}
    marked = [
        lost(e)
        if e.feasible and e.key != winner.key and weighed.get(e.key, assigned.cost) < assigned.cost
        else e
        for e in checked
    ]
    return settle(ctx, marked, now, settings, solver=solver, forced=winner)


def _displaced(ctx: ModelContext, plan: Plan, now: datetime) -> Plan:
    """Zero replicas of what it ran (its Deployment stays, scaled down), until room frees."""
    chosen = plan.chosen.with_replicas(0) if plan.chosen is not None else None
    return replace(
        plan,
        change=ChangeKind.DISPLACED,
        chosen=chosen,
        replicas=0,
        scaled_at=now if ctx.current.replicas else plan.scaled_at,
    )


__all__ = ["Displacement", "FleetPlan", "plan_fleet"]
