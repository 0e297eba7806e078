"""Fast fleet heuristic. Priority levels in order; inside a level, models that lose most by
not getting their cheapest option go first and take it best-fit. Then a bounded local search:
a model moves to a cheaper option if it fits, or if a model of the same level already there
can move elsewhere and the level's cost (a model without room counts as a large penalty)
drops. Higher levels are settled before lower ones are placed, so they are never displaced."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from .capacity import NodeRoom, ReplicaNeed, TierPool, clone_pools
from .problem import FleetModel, Option, Problem, Solution

#: Local-search sweeps over a level's models.
_ROUNDS = 3
#: Moves tried per level (each places and releases a few replicas): bounds the work on big fleets.
_ATTEMPTS_PER_LEVEL = 1500
#: Models of the level already on a tier that are tried as the one to move elsewhere.
_BLOCKERS_TRIED = 6

Slots = list[tuple[NodeRoom, int | None]]
"""Where a model's replicas went: the node, and the device memory taken on gpu nodes."""


def solve_greedy(problem: Problem) -> Solution:
    packer = _Packer(clone_pools(problem.pools), penalty=_penalty(problem))
    for level in problem.levels():
        models = sorted(
            (m for m in problem.models if m.priority == level), key=lambda m: (-_regret(m), m.key)
        )
        for model in models:
            packer.first_fit(model, model.options)
        packer.search(models)
    return packer.solution


def _penalty(problem: Problem) -> Decimal:
    """Cost of leaving a model without room: more than any plan of the fleet costs."""
    return 1 + 10 * sum((m.options[-1].cost for m in problem.models), Decimal(0))


def _regret(model: FleetModel) -> float:
    """What the model loses per hour if it does not get its cheapest option."""
    options = model.options
    if len(options) < 2:
        return math.inf  # no fallback at all: place it while there is room
    return float(options[1].cost - options[0].cost)


@dataclass
class _Packer:
    pools: dict[str, TierPool]
    penalty: Decimal
    solution: Solution = field(default_factory=dict)
    placed: dict[str, Slots] = field(default_factory=dict)
    attempts: int = 0

    def cost(self, option: Option | None) -> Decimal:
        return self.penalty if option is None else option.cost

    def first_fit(self, model: FleetModel, options: tuple[Option, ...]) -> Option | None:
        """Place the model on the first option that fits (its slots recorded)."""
        self.solution[model.key] = None
        for option in options:
            slots = _place(option, self.pools)
            if slots is not None:
                self.solution[model.key], self.placed[model.key] = option, slots
                return option
        return None

    def lift(self, key: str) -> tuple[Option | None, Slots]:
        """Take the model's replicas off their nodes; returns what to put back on undo."""
        option, slots = self.solution.get(key), self.placed.pop(key, [])
        _release(slots, option)
        self.solution[key] = None
        return option, slots

    def restore(self, key: str, option: Option | None, slots: Slots) -> None:
        if option is not None:
            _retake(slots, option)
            self.solution[key], self.placed[key] = option, slots

    def search(self, models: list[FleetModel]) -> None:
        """Cheaper moves, then moves that push one blocker elsewhere, while any improves."""
        self.attempts = 0
        for _ in range(_ROUNDS):
            improved = False
            for model in models:
                improved |= self.improve(model) or self.eject(model, models)
            if not improved or self.attempts >= _ATTEMPTS_PER_LEVEL:
                return

    def improve(self, model: FleetModel) -> bool:
        """Move to a cheaper option that fits once the model's own replicas are lifted."""
        current = self.solution.get(model.key)
        cheaper = tuple(o for o in model.options if self.cost(o) < self.cost(current))
        if not cheaper:
            return False
        self.attempts += 1
        old = self.lift(model.key)
        if self.first_fit(model, cheaper) is not None:
            return True
        self.restore(model.key, *old)
        return False

    def eject(self, model: FleetModel, level: list[FleetModel]) -> bool:
        """Take a cheaper option by moving one same-level model off its tier, if that pays."""
        current = self.solution.get(model.key)
        for option in (o for o in model.options if o.bounded and o.cost < self.cost(current)):
            for blocker in self._blockers(option.tier, model, level):
                if self.attempts >= _ATTEMPTS_PER_LEVEL:
                    return False
                self.attempts += 1
                if self._try_eject(model, option, blocker):
                    return True
        return False

    def _blockers(self, tier: str, model: FleetModel, level: list[FleetModel]) -> list[FleetModel]:
        """Models of the level on `tier`, the cheapest to move first."""
        on_tier = [
            m for m in level
            if m.key != model.key and (o := self.solution.get(m.key)) is not None and o.tier == tier
        ]  # fmt: skip
        return sorted(on_tier, key=lambda m: (_regret(m), m.key))[:_BLOCKERS_TRIED]

    def _try_eject(self, model: FleetModel, option: Option, blocker: FleetModel) -> bool:
        before = self.cost(self.solution.get(model.key)) + self.cost(self.solution[blocker.key])
        old_model, old_blocker = self.lift(model.key), self.lift(blocker.key)
        if self.first_fit(model, (option,)) is not None:
            moved = self.first_fit(blocker, blocker.options)
            if option.cost + self.cost(moved) < before:
                return True
            self.lift(blocker.key)
            self.lift(model.key)
        self.restore(blocker.key, *old_blocker)
        self.restore(model.key, *old_model)
        return False


def _place(option: Option, pools: dict[str, TierPool]) -> Slots | None:
    if not option.bounded:
        return []
    pool = pools[option.tier]
    if not pool.holds(option.need, option.replicas):
        return None
    return [_take(pool, option.need) for _ in range(option.replicas)]


def _take(pool: TierPool, need: ReplicaNeed) -> tuple[NodeRoom, int | None]:
    """One replica, best fit: the smallest device, or the fullest node, that holds it."""
    assert pool.nodes is not None
    best: tuple[int, str] | None = None
    chosen: NodeRoom | None = None
    for node in pool.nodes:
        if node.cpu is not None and node.cpu < need.cpu:
            continue
        if need.gpu:
            if node.memory < need.host_bytes:
                continue
            room = min((d for d in node.devices if d >= need.tier_bytes), default=None)
        else:
            room = node.memory if node.memory >= need.tier_bytes else None
        if room is not None and (best is None or (room, node.name) < best):
            best, chosen = (room, node.name), node
    assert chosen is not None and best is not None  # holds() said there is room
    device: int | None = None
    if need.gpu:
        device = best[0]
        chosen.devices.remove(device)
        chosen.memory -= need.host_bytes
    else:
        chosen.memory -= need.tier_bytes
    if chosen.cpu is not None:
        chosen.cpu -= need.cpu
    return chosen, device


def _release(slots: Slots, option: Option | None) -> None:
    if option is None:
        return
    need = option.need
    for node, device in slots:
        if device is not None:
            node.devices.append(device)
            node.memory += need.host_bytes
        else:
            node.memory += need.tier_bytes
        if node.cpu is not None:
            node.cpu += need.cpu


def _retake(slots: Slots, option: Option) -> None:
    """Put lifted replicas back exactly where they were."""
    need = option.need
    for node, device in slots:
        if device is not None:
            node.devices.remove(device)
            node.memory -= need.host_bytes
        else:
            node.memory -= need.tier_bytes
        if node.cpu is not None:
            node.cpu -= need.cpu
