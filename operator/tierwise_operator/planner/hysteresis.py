"""Stability rules: keep the current plan unless it breaks or a switch saves enough; dwell;
scale up at once, scale down only to the highest recommendation of the stabilisation window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from . import explain
from .evaluate import Demand, Evaluation
from .settings import PlannerSettings
from .snapshot import CurrentPlan, Recommendation


def ranking(evaluation: Evaluation) -> tuple[Decimal, float, str]:
    """Cheapest first; ties go to more headroom, then to the name (for determinism)."""
    assert evaluation.per_hour is not None
    return (evaluation.per_hour, -evaluation.headroom, str(evaluation.key))


def breach_to_answer(
    current: CurrentPlan, demand: Demand, slo_s: float | None, settings: PlannerSettings
) -> bool:
    """A measured p99 above the SLO, measured long enough after the last change to reflect it.

    Without the settle time every reconcile would add a replica for the same breach.
    """
    if slo_s is None or demand.observed_p99_s is None or demand.observed_p99_s <= slo_s:
        return False
    if current.scaled_at is None or demand.observed_at is None:
        return True
    return demand.observed_at >= current.scaled_at + settings.breach_settle


def switch_blocker(
    current: CurrentPlan,
    now: datetime,
    demand: Demand,
    slo_s: float | None,
    settings: PlannerSettings,
) -> str | None:
    """Why the candidate may not change now (stale metrics, a measured SLO breach being
    answered by scaling, dwell time), or None."""
    if demand.stale:
        return explain.stale_metrics()
    if breach_to_answer(current, demand, slo_s, settings):
        assert demand.observed_p99_s is not None and slo_s is not None
        return explain.scaling_first(demand.observed_p99_s, slo_s)
    if current.tier_changed_at is not None:
        left = current.tier_changed_at + settings.min_dwell - now
        if left.total_seconds() > 0:
            return explain.in_dwell(left.total_seconds() / 60)
    return None


def worth_switching(best: Evaluation, current: Evaluation, margin: Decimal) -> bool:
    """A different candidate wins only if it costs less than (1 - margin) of the current one."""
    assert best.per_hour is not None and current.per_hour is not None
    return best.per_hour < current.per_hour * (1 - margin)


def sticky_cost(evaluation: Evaluation, margin: Decimal) -> Decimal:
    """The current candidate's cost as the fleet solver sees it: discounted by the margin."""
    assert evaluation.per_hour is not None
    return evaluation.per_hour * (1 - margin)


@dataclass(frozen=True)
class Scaling:
    replicas: int
    history: tuple[Recommendation, ...]


def stabilise(
    current: CurrentPlan, needed: int, now: datetime, settings: PlannerSettings
) -> Scaling:
    """Replicas for the kept candidate: up at once, down only to the highest recommendation
    in force during the stabilisation window.

    Recommendations are kept as a step function: each stands until the next different
    one. Between two rounds the planner learns nothing new, so the last recommendation
    is the one in force; and a plan that holds adds nothing to the history, so its
    status does not change from round to round.
    """
    history = in_force(current.recommendations, now - settings.scale_down_window)
    if not history or history[-1].replicas != needed:
        history += (Recommendation(now, needed),)
    if needed >= current.replicas:
        return Scaling(needed, history)
    highest = max(r.replicas for r in history)
    return Scaling(min(current.replicas, max(needed, highest)), history)


def in_force(
    recommendations: tuple[Recommendation, ...], since: datetime
) -> tuple[Recommendation, ...]:
    """The recommendations in force at some moment after `since`, oldest first."""
    ordered = sorted(recommendations, key=lambda r: r.at)
    last = len(ordered) - 1  # the latest stands until now; each other until the next
    return tuple(r for i, r in enumerate(ordered) if i == last or ordered[i + 1].at > since)
