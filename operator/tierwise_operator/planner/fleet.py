"""Fleet-wide planning: all models compete for the free rooms of bounded tiers; exact MILP
while it is small enough and proves optimal in time, the greedy heuristic beyond."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..api import InferenceModel, TierClass
from . import explain
from .capacity import TierPool, build_pools
from .context import ModelContext, prepare
from .decide import check_room, settle
from .evaluate import Evaluation, Stage
from .exact import solve_exact, variable_count
from .greedy import solve_greedy
from .hysteresis import sticky_cost, switch_blocker
from .plan import Plan
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
    pools = build_pools(tiers, snapshot, movable=[c.key for c in contexts])
    # Room is checked once, against everything free before any model is placed.
    checked = [[check_room(e, pools[e.key.tier_class]) for e in c.evaluations] for c in contexts]
    fleet_models = (
        _fleet_model(c, e, pools, now, settings) for c, e in zip(contexts, checked, strict=True)
    )
    problem = Problem(tuple(m for m in fleet_models if m.options), pools)
    solution, used, why = _solve(problem, settings, solver)
    plans = tuple(
        _settle(c, e, solution, now, settings=settings, solver=used)
        for c, e in zip(contexts, checked, strict=True)
    )
    return FleetPlan(plans, used, why)


def _fleet_model(
    ctx: ModelContext,
    checked: list[Evaluation],
    pools: dict[str, TierPool],
    now: datetime,
    settings: PlannerSettings,
) -> FleetModel:
    """The model's options: its feasible candidates, held to the current one when it may not
    move, the current one's cost discounted by the switch margin."""
    feasible = [e for e in checked if e.feasible and e.need is not None]
    current = next((e for e in feasible if e.key == ctx.current.key), None)
    slo = ctx.model.spec.slo.latency_p99
    if current is not None and switch_blocker(ctx.current, now, ctx.demand, slo, settings):
        feasible = [current]
    options = [_option(e, pools, e is current, ctx, settings) for e in feasible]
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
    settings: PlannerSettings,
    solver: str,
) -> Plan:
    """The model's plan as the fleet assigned it; options it would have preferred but lost
    to other models' replicas say so."""
    assigned = solution.get(ctx.key)
    if assigned is None:
        lost = [_lost(e) if e.feasible else e for e in checked]
        return settle(ctx, lost, now, settings, solver=solver)
    winner = assigned.evaluation
    marked = [
        _lost(e)
        if e.feasible and e.key != winner.key and _solver_cost(e, ctx, settings) < assigned.cost
        else e
        for e in checked
    ]
    return settle(ctx, marked, now, settings, solver=solver, forced=winner)


def _solver_cost(e: Evaluation, ctx: ModelContext, settings: PlannerSettings) -> Decimal:
    assert e.per_hour is not None
    if e.key == ctx.current.key:
        return sticky_cost(ctx.current_needed or e, settings.switch_margin)
    return e.per_hour


def _lost(e: Evaluation) -> Evaluation:
    return e.broken(Stage.CAPACITY, explain.taken_by_others(e))
