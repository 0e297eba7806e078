"""What a reconcile reads (World) and what it asks the handlers to do (Actions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api import TierClass
from ..kube import Kind
from ..metrics.observation import Observation
from ..planner import MetricsSnapshot, Plan

Manifest = dict[str, Any]


@dataclass(frozen=True)
class World:
    """The cluster as one model's reconcile sees it, read by the handlers beforehand."""

    tiers: Sequence[TierClass]
    snapshot: MetricsSnapshot | None = None
    observation: Observation | None = None
    jobs: Sequence[Manifest] = ()
    """Profile Jobs the model owns."""
    pods: Sequence[Manifest] = ()
    """Pods of the model: serving replicas and profile Job pods."""
    deployment: Manifest | None = None
    pdb_exists: bool = False
    node_labels: Sequence[dict[str, str]] | None = None
    """Labels of every node, to know which TierClasses have nodes (None: unknown)."""
    eval_digest: str = ""
    """sha256 of the eval set's ConfigMap data (empty for the bundled set)."""
    eval_problem: str | None = None
    """Why the eval set cannot be read (a missing ConfigMap or key)."""


@dataclass(frozen=True)
class Event:
    type: str
    """`Normal` or `Warning`."""
    reason: str
    message: str


@dataclass
class Actions:
    """What the handlers do, in order: create Jobs, apply, delete, patch status, post events."""

    status: dict[str, Any]
    create: list[Manifest] = field(default_factory=list)
    apply: list[Manifest] = field(default_factory=list)
    delete: list[tuple[Kind, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def feasible(self) -> bool:
        return self.plan is not None and self.plan.feasible
