"""Reconciliation as a pure function: (InferenceModel, what the cluster shows, now) -> actions."""

from .core import reconcile
from .world import Actions, Event, World

__all__ = ["Actions", "Event", "World", "reconcile"]
