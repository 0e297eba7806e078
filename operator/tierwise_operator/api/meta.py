"""Kubernetes object metadata and metav1.Condition, as the tierwise types embed them."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from .base import ApiModel
from .enums import ConditionStatus


class ObjectMeta(ApiModel):
    """The parts of metav1.ObjectMeta tierwise reads; the rest is kept as sent."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=253)
    """Object name, unique in its namespace (or cluster, for TierClasses)."""
    namespace: str | None = None
    """Namespace of namespaced objects."""
    uid: str | None = None
    """Set by the API server; children's ownerReferences point at it."""
    generation: int | None = None
    """Bumped by the API server on every spec change."""
    resource_version: str | None = None
    """Opaque version for optimistic concurrency."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels for selection."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Free-form annotations."""


class Condition(ApiModel):
    """One aspect of an object's state, shaped like metav1.Condition."""

    type: str
    """CamelCase name of the aspect: Ready, Progressing, Degraded, Profiled, ..."""
    status: ConditionStatus
    """`True`, `False` or `Unknown`."""
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    """CamelCase machine-readable cause of the last transition."""
    message: str = ""
    """What happened, in words for the person running kubectl describe."""
    last_transition_time: str | None = None
    """RFC 3339 time the status last changed (not when the message last changed)."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""
