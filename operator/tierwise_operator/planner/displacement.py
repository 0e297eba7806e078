"""Why a model runs on less than it would alone: the models holding the room it wants, whether
priority or cost decided, and what it needs to come back — in words an SRE reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .problem import FleetModel, Option, Solution

_GIB = 2**30


@dataclass(frozen=True)
class Displacement:
    """A model the fleet round gave less than its own best option."""

    wanted: str
    """The candidate it would run alone (`int4/gpu-h100`)."""
    tier_class: str
    by: tuple[str, ...]
    """Models (`namespace/name`) holding room on that TierClass, highest priority first."""
    by_priority: bool
    """True when a model of higher priority holds it; False when cost decided."""
    need: str
    """What has to be free for it to come back, in words."""
    replicas_short: int = 0
    """How many fewer replicas it runs than its traffic needs (0: it runs them all)."""

    @property
    def taker(self) -> str:
        return self.by[0] if self.by else "other models"

    def message(self) -> str:
        """`no room for int4/gpu-h100: support/vip holds it (higher priority); ...`."""
        why = (
            "higher priority"
            if self.by_priority
            else "same priority; the fleet costs less this way"
        )
        who = ", ".join(self.by[:3]) + (f" and {len(self.by) - 3} more" if len(self.by) > 3 else "")
        verb = "holds" if len(self.by) == 1 else "hold"
        if self.by:
            head = f"no room for {self.wanted}: {who} {verb} it ({why})"
        else:
            head = f"not enough free room on {self.tier_class} for {self.wanted}"
        short = f"; runs {self.replicas_short} replica(s) short" if self.replicas_short else ""
        return f"{head}{short}; to come back it needs {self.need}"


def need_words(option: Option) -> str:
    """`1 free GPU device with 12 GiB` or `3 replicas x 2 GiB on cpu-large`."""
    need, replicas = option.need, option.replicas + option.short
    size = f"{need.tier_bytes / _GIB:.3g} GiB"
    tier = option.evaluation.key.tier_class
    if need.gpu:
        devices = "device" if replicas == 1 else "devices"
        return f"{replicas} free GPU {devices} with {size} on {tier}"
    return f"{replicas} replica(s) x {size} free on {tier}"


@dataclass(frozen=True)
class Holders:
    """Who the fleet's assignment placed on each TierClass."""

    by_tier: Mapping[str, Sequence[FleetModel]]

    @classmethod
    def of(cls, models: Sequence[FleetModel], solution: Solution) -> Holders:
        by_tier: dict[str, list[FleetModel]] = {}
        for model in models:
            option = solution.get(model.key)
            if option is not None:
                by_tier.setdefault(option.tier, []).append(model)
        return cls(by_tier)

    def on(self, tier: str, besides: str) -> list[FleetModel]:
        """The models on `tier` other than `besides`, highest priority first."""
        others = (m for m in self.by_tier.get(tier, ()) if m.key != besides)
        return sorted(others, key=lambda m: (-m.priority, m.key))


def displacements(
    models: Sequence[FleetModel], holders: Holders, solution: Solution
) -> dict[str, Displacement]:
    """Every model whose assigned option is not its own cheapest, keyed by model."""
    out = {}
    for model in models:
        best, got = model.options[0], solution.get(model.key)
        if got is not None and not got.short and got.cost <= best.cost:
            continue  # its best, or one as cheap to the solver
        on_tier = holders.on(best.tier, model.key)
        out[model.key] = Displacement(
            wanted=str(best.evaluation.key),
            tier_class=best.tier,
            by=tuple(m.key for m in on_tier),
            by_priority=any(m.priority > model.priority for m in on_tier),
            need=need_words(best),
            replicas_short=got.short if got is not None else 0,
        )
    return out


def preempted_by(
    displaced: Mapping[str, Displacement], serving: Mapping[str, str]
) -> dict[str, tuple[str, ...]]:
    """For each model that takes room from a model serving there now (`serving`: model ->
    TierClass it runs replicas on), the models it displaces. Only a taker that outranks the
    loser is named: where cost decided, no model preempted another."""
    out: dict[str, list[str]] = {}
    for loser, d in displaced.items():
        if serving.get(loser) != d.tier_class or not d.by_priority:
            continue
        out.setdefault(d.taker, []).append(loser)
    return {k: tuple(sorted(v)) for k, v in out.items()}
