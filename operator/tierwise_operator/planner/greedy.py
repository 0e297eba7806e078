"""Fast fleet heuristic: priority levels in order; inside a level, models that lose most by
not getting their cheapest option go first and take it best-fit; then cheaper moves into
whatever room is left, repeated while any model improves."""

from __future__ import annotations

import math

from .capacity import NodeRoom, ReplicaNeed, TierPool, clone_pools
from .problem import FleetModel, Option, Problem, Solution

#: Improvement rounds after the greedy pass (each is one sweep over the level's models).
_ROUNDS = 3

Slots = list[tuple[NodeRoom, int | None]]
"""Where a model's replicas went: the node, and the device memory taken on gpu nodes."""


def solve_greedy(problem: Problem) -> Solution:
    pools = clone_pools(problem.pools)
    solution: Solution = {}
    placed: dict[str, Slots] = {}
    for level in problem.levels():
        models = sorted(
            (m for m in problem.models if m.priority == level), key=lambda m: (-_regret(m), m.key)
        )
        for model in models:
            solution[model.key] = _first_fit(model.options, pools, placed, model.key)
        for _ in range(_ROUNDS):
            if not any(_improve(m, pools, solution, placed) for m in models):
                break
    return solution


def _regret(model: FleetModel) -> float:
    """What the model loses per hour if it does not get its cheapest option."""
    options = model.options
    if len(options) < 2:
        return math.inf  # no fallback at all: place it while there is room
    return float(options[1].cost - options[0].cost)


def _first_fit(
    options: tuple[Option, ...], pools: dict[str, TierPool], placed: dict[str, Slots], key: str
) -> Option | None:
    for option in options:
        slots = _place(option, pools)
        if slots is not None:
            placed[key] = slots
            return option
    return None


def _improve(
    model: FleetModel, pools: dict[str, TierPool], solution: Solution, placed: dict[str, Slots]
) -> bool:
    """Move the model to a cheaper option if one fits once its own replicas are released."""
    current = solution.get(model.key)
    cheaper = [o for o in model.options if current is None or o.cost < current.cost]
    if not cheaper:
        return False
    own = placed.pop(model.key, [])
    _release(own, current)
    choice = _first_fit(tuple(cheaper), pools, placed, model.key)
    if choice is None:
        if current is not None:
            _retake(own, current)
            placed[model.key] = own
        return False
    solution[model.key] = choice
    return True


def _place(option: Option, pools: dict[str, TierPool]) -> Slots | None:
    if not option.bounded:
        return []
    pool = pools[option.tier]
    if pool.max_replicas(option.need) < option.replicas:
        return None
    return [_take(pool, option.need) for _ in range(option.replicas)]


def _take(pool: TierPool, need: ReplicaNeed) -> tuple[NodeRoom, int | None]:
    assert pool.nodes is not None
    fitting = [n for n in pool.nodes if n.fits(need)]
    if need.gpu:
        node = min(
            fitting, key=lambda n: (min(d for d in n.devices if d >= need.tier_bytes), n.name)
        )
        device = min(d for d in node.devices if d >= need.tier_bytes)
        node.devices.remove(device)
        node.memory -= need.host_bytes
    else:
        node = min(fitting, key=lambda n: (n.memory, n.name))
        device = None
        node.memory -= need.tier_bytes
    if node.cpu is not None:
        node.cpu -= need.cpu
    return node, device


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
    """Put released replicas back exactly where they were."""
    need = option.need
    for node, device in slots:
        if device is not None:
            node.devices.remove(device)
            node.memory -= need.host_bytes
        else:
            node.memory -= need.tier_bytes
        if node.cpu is not None:
            node.cpu -= need.cpu
