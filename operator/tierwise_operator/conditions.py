"""Status conditions shaped like metav1.Condition, set as kubebuilder's SetStatusCondition does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .api import Condition, ConditionStatus

# Condition types of an InferenceModel.
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
PROFILED = "Profiled"
ACCURACY_WITHIN_BUDGET = "AccuracyWithinBudget"
SLO_MET = "SLOMet"
METRICS_AVAILABLE = "MetricsAvailable"
INPUTS_RESOLVED = "InputsResolved"
"""Every TierClass the spec names exists and nothing given is ignored."""
ADAPTERS_READY = "AdaptersReady"
"""Set only for models with spec.adapters: whether every adapter can be served."""

ALL_TYPES = (
    READY,
    PROGRESSING,
    DEGRADED,
    PROFILED,
    ACCURACY_WITHIN_BUDGET,
    SLO_MET,
    METRICS_AVAILABLE,
    INPUTS_RESOLVED,
)

TRUE = ConditionStatus.TRUE
FALSE = ConditionStatus.FALSE
UNKNOWN = ConditionStatus.UNKNOWN


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    *,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime moves only when the status flips."""
    if isinstance(status, bool):
        status = TRUE if status else FALSE
    existing = find(conditions, type_)
    transition = (
        existing.last_transition_time
        if existing is not None and existing.status == status and existing.last_transition_time
        else rfc3339(now)
    )
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    out = [c for c in conditions if c.type != type_]
    out.append(updated)
    return sorted(out, key=_order)


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.status == TRUE


def _order(cond: Condition) -> tuple[int, str]:
    # A stable order keeps status patches minimal and `kubectl describe` tidy.
    return (ALL_TYPES.index(cond.type) if cond.type in ALL_TYPES else len(ALL_TYPES), cond.type)
