"""The fleet assignment problem: per model, options (candidate, replicas, need, cost) competing
for the free rooms of bounded TierClasses; elastic tiers never compete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .capacity import NodeRoom, ReplicaNeed, TierPool
from .evaluate import Evaluation


@dataclass(frozen=True)
class Option:
    """One feasible candidate of one model, as the solver sees it."""

    evaluation: Evaluation
    need: ReplicaNeed
    replicas: int
    cost: Decimal
    """Cost per hour the solver minimises (the current candidate's is discounted by the margin)."""
    bounded: bool
    """Whether its TierClass has real nodes whose room is shared (else capacity is elastic)."""
    short: int = 0
    """Replicas fewer than traffic needs: a fallback that keeps a model serving, partly, when
    the room for all its replicas is taken (its cost carries a penalty per missing replica)."""

    @property
    def tier(self) -> str:
        return self.evaluation.key.tier_class


@dataclass(frozen=True)
class FleetModel:
    key: str
    priority: int
    options: tuple[Option, ...]
    """Cheapest first; never empty (models without options are not in the problem)."""


@dataclass(frozen=True)
class Problem:
    models: tuple[FleetModel, ...]
    pools: dict[str, TierPool]

    def levels(self) -> list[int]:
        """Distinct priorities, highest first."""
        return sorted({m.priority for m in self.models}, reverse=True)

    def rooms(self, tier: str) -> list[NodeRoom]:
        pool = self.pools.get(tier)
        return pool.nodes if pool is not None and pool.nodes is not None else []


Solution = dict[str, Option | None]
"""Model key -> the option it runs, or None when it got no room."""


def prune(options: Sequence[Option]) -> tuple[Option, ...]:
    """Drop options no optimum needs: anything dearer than an elastic one, and options
    dominated on the same tier (dearer and no smaller in any resource)."""
    ordered = sorted(options, key=lambda o: (o.cost, str(o.evaluation.key)))
    kept: list[Option] = []
    for option in ordered:
        if any(not k.bounded for k in kept):
            break  # an elastic option always fits, so nothing dearer is ever needed
        if not any(_dominates(k, option) for k in kept):
            kept.append(option)
    return tuple(kept)


def _dominates(a: Option, b: Option) -> bool:
    if a.tier != b.tier or a.need.gpu != b.need.gpu:
        return False
    # Each of a's replicas is no bigger and there are no more of them: a fits wherever b does.
    return (
        a.cost <= b.cost
        and a.replicas <= b.replicas
        and a.need.tier_bytes <= b.need.tier_bytes
        and a.need.host_bytes <= b.need.host_bytes
        and a.need.cpu <= b.need.cpu
    )
