"""The planner: pure functions from specs, profiles, TierClasses, metrics and the clock to plans."""

from .candidates import CandidateKey
from .decide import decide
from .plan import ChangeKind, Plan
from .settings import DEFAULT_SETTINGS, PlannerSettings
from .snapshot import (
    CurrentPlan,
    Device,
    MetricsSnapshot,
    ModelMetrics,
    NodeCapacity,
    Placement,
    model_key,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "CandidateKey",
    "ChangeKind",
    "CurrentPlan",
    "Device",
    "MetricsSnapshot",
    "ModelMetrics",
    "NodeCapacity",
    "Placement",
    "Plan",
    "PlannerSettings",
    "decide",
    "model_key",
]
