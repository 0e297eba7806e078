"""The conditions an SRE reads with kubectl describe, computed from the plan and the cluster."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..api import Condition, FailedCandidate, InferenceModel
from ..conditions import (
    ACCURACY_WITHIN_BUDGET,
    DEGRADED,
    METRICS_AVAILABLE,
    PROGRESSING,
    READY,
    SLO_MET,
    UNKNOWN,
    set_condition,
)
from ..metrics.observation import Observation
from ..planner import ChangeKind, MetricsSnapshot, Plan, model_key

Manifest = dict[str, Any]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


class ConditionSetter:
    """Accumulates conditions for one status write, all stamped with the same time."""

    def __init__(self, existing: Sequence[Condition], generation: int | None, now: datetime):
        self.conditions = list(existing)
        self.generation = generation
        self.now = now

    def set(self, type_: str, status: Any, reason: str, message: str) -> None:
        self.conditions = set_condition(
            self.conditions,
            type_,
            status=status,
            reason=reason,
            message=message[:1000],
            generation=self.generation,
            now=self.now,
        )


def rollout(deployment: Manifest | None) -> tuple[int, int, bool]:
    """(ready replicas, desired replicas, rolling out) of the serving Deployment."""
    if deployment is None:
        return 0, 0, False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    observed = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    rolling = not observed or updated < desired or total > desired or ready < desired
    return ready, desired, rolling


def serving_conditions(
    setter: ConditionSetter,
    plan: Plan | None,
    deployment: Manifest | None,
    failed: Sequence[FailedCandidate],
    profiling: bool,
) -> None:
    ready, desired, rolling = rollout(deployment)
    where = f" on {plan.tier_class} at {plan.precision}" if plan and plan.chosen else ""
    displaced = plan is not None and plan.change is ChangeKind.DISPLACED
    if displaced and ready == 0:
        assert plan is not None
        setter.set(READY, False, "Displaced", plan.reason)
    elif deployment is None and (plan is None or plan.chosen is None):
        setter.set(READY, False, "NoFeasiblePlan", plan.reason if plan else "not planned yet")
    elif ready > 0:
        setter.set(READY, True, "Serving", f"{ready}/{desired} replicas ready{where}")
    else:
        setter.set(READY, False, "Deploying", f"0/{desired or '?'} replicas ready{where}")
    if rolling:
        setter.set(PROGRESSING, True, "RollingOut", f"{ready}/{desired} replicas ready{where}")
    elif profiling:
        setter.set(PROGRESSING, True, "Profiling", "serving on estimates until the profile is in")
    else:
        setter.set(PROGRESSING, False, "Stable", f"all {desired} replicas current{where}")
    if failed:
        names = ", ".join(f"{f.candidate} ({f.reason})" for f in failed)
        setter.set(
            DEGRADED, True, "CandidateFailed", f"excluded until their back-off ends: {names}"
        )
    elif plan is not None and plan.displacement is not None:
        setter.set(DEGRADED, True, "Displaced", plan.displacement.message())
    elif plan is not None and not plan.feasible:
        setter.set(DEGRADED, True, "NoFeasiblePlan", plan.reason)
    else:
        setter.set(DEGRADED, False, "AsPlanned", "no failed candidates")


def quality_conditions(
    setter: ConditionSetter,
    model: InferenceModel,
    plan: Plan | None,
    snapshot: MetricsSnapshot | None,
) -> None:
    chosen = plan.chosen if plan else None
    budget = float(model.spec.accuracy_budget.max_degradation)
    delta = chosen.figures.accuracy_delta if chosen else None
    if chosen is None or delta is None:
        setter.set(ACCURACY_WITHIN_BUDGET, UNKNOWN, "NoPlan", "no candidate is planned")
    elif plan is not None and plan.estimated:
        setter.set(
            ACCURACY_WITHIN_BUDGET,
            UNKNOWN,
            "Estimated",
            f"estimated delta {delta:.2%} (budget {budget:.2%}) until profiled",
        )
    else:
        ok = delta <= budget + 1e-12
        setter.set(
            ACCURACY_WITHIN_BUDGET,
            ok,
            "Measured" if ok else "OverBudget",
            f"measured delta {delta:.3%} vs budget {budget:.2%}",
        )
    slo = model.spec.slo.latency_p99
    metrics = snapshot.metrics_for(model_key(model)) if snapshot else None
    observed = float(metrics.latency_p99) if metrics and metrics.latency_p99 is not None else None
    if slo is None:
        setter.set(SLO_MET, True, "NoLatencySLO", "no latency SLO is set")
    elif observed is not None:
        ok = observed <= float(slo)
        setter.set(
            SLO_MET,
            ok,
            "Measured" if ok else "LatencyAboveSLO",
            f"observed p99 {_ms(observed)} vs SLO {_ms(float(slo))}",
        )
    elif chosen is not None and chosen.predicted_p99_s is not None:
        ok = chosen.predicted_p99_s <= float(slo)
        setter.set(
            SLO_MET,
            ok,
            "Predicted",
            f"no traffic observed; predicted p99 {_ms(chosen.predicted_p99_s)} "
            f"vs SLO {_ms(float(slo))}",
        )
    else:
        setter.set(SLO_MET, UNKNOWN, "NoData", "no observed or predicted latency")


def metrics_condition(setter: ConditionSetter, observation: Observation | None) -> None:
    if observation is None:
        setter.set(METRICS_AVAILABLE, False, "NotCollected", "no metrics collected yet")
        return
    setter.set(METRICS_AVAILABLE, observation.available, observation.reason, observation.message)
