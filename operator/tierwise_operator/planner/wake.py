"""Wake from zero: a recent demand signal on a model is a floor of one replica.

The gateway stamps `tierwise.dev/demand-at` (RFC 3339) on an InferenceModel
when a request finds no ready replica. While that stamp is younger than the
hold, the planner plans at least one replica, whatever the observed traffic
says (a model at zero replicas has no runtime to measure it); after the hold,
measured traffic keeps it up or lets it scale back down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..api import InferenceModel

DEMAND_ANNOTATION = "tierwise.dev/demand-at"
#: Plan words for a plan a demand signal lifted from zero.
WOKEN = "woken by traffic"


def demand_patch(at: datetime) -> dict[str, Any]:
    """The merge patch the gateway sends."""
    stamp = at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"metadata": {"annotations": {DEMAND_ANNOTATION: stamp}}}


def demand_at(model: InferenceModel) -> datetime | None:
    """The last demand signal, or None (absent, unreadable or without a timezone)."""
    raw = model.metadata.annotations.get(DEMAND_ANNOTATION)
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def replica_floor(model: InferenceModel, now: datetime, hold: timedelta) -> int:
    """1 while a demand signal is younger than `hold` (and not from the future), else 0."""
    at = demand_at(model)
    if at is None or at > now + timedelta(minutes=1):
        return 0
    return 1 if now - at <= hold else 0


def with_floor(model: InferenceModel, floor: int) -> InferenceModel:
    """The model as the planner should size it: `replicas.min` raised to the floor."""
    replicas = model.spec.replicas
    if floor <= replicas.min:
        return model
    raised = replicas.model_copy(update={"min": min(floor, replicas.max)})
    return model.model_copy(update={"spec": model.spec.model_copy(update={"replicas": raised})})
