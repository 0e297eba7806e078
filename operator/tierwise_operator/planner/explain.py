"""Reasons in words an SRE reads in `kubectl describe`: figures, units, and the broken limit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from ..api import Precision, TierClass, TierKind
from .capacity import Resource, node_misfit
from .cost import money_text

if TYPE_CHECKING:
    from .capacity import ReplicaNeed, TierPool
    from .evaluate import Evaluation
    from .snapshot import FailedKey

_GIB = 2**30
#: How many models "taken by" names before it says "and N more".
_NAMED_HOLDERS = 3


def pct(fraction: float) -> str:
    """`0.029` -> `2.9%` (up to two decimals, trailing zeros dropped; a nonzero share
    too small for two decimals keeps one significant digit rather than reading `0%`)."""
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    if fraction and text in ("0", "-0"):
        text = number(fraction * 100, 1)
    return f"{text}%"


def number(value: float, digits: int = 3) -> str:
    """At least `digits` significant digits in plain notation (never `4.8e+03`): `4823`,
    `48`, `1.13`, `0.000123`; trailing zeros dropped."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def apart(a: float, b: float, digits: int = 3) -> tuple[str, str]:
    """`number` of both, with as many more digits as it takes to tell them apart."""
    for more in range(digits, digits + 10):
        left, right = number(a, more), number(b, more)
        if left != right or a == b:
            return left, right
    return left, right


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{number(value * 1000)}ms"
    if value < 120:
        return f"{number(value)}s"
    return f"{number(value / 60)}min"


def gib(n: int) -> str:
    return f"{number(n / _GIB)} GiB"


def rate(rps: float) -> str:
    return f"{number(rps)} req/s"


def cores(count: float) -> str:
    return f"{number(count)} cores" if count != 1 else "1 core"


def replicas(count: int) -> str:
    return "1 replica" if count == 1 else f"{count} replicas"


def failed(fail: FailedKey) -> str:
    return f"{fail.reason}; excluded until {fail.retry_after.isoformat()}"


def accuracy(delta: float, budget: float) -> str:
    return f"accuracy delta {pct(delta)} > budget {pct(budget)}"


def accuracy_unknown(variant: str, precision: Precision) -> str:
    return (
        f"accuracy of variant {variant!r} at {precision} not measured yet "
        "(a variant is only chosen at a precision it was profiled at)"
    )


def too_big(need: ReplicaNeed, tier: TierClass) -> str:
    """One replica does not fit an empty node (or device): the memory or the cores."""
    spec = tier.spec
    if node_misfit(need, tier) is Resource.CORES and spec.cpu_per_node is not None:
        return f"needs {cores(need.cpu)} per replica > {number(spec.cpu_per_node)} per node"
    where = "device" if spec.kind is TierKind.GPU else "node"
    needed, limit = apart(need.tier_bytes / _GIB, int(spec.memory_per_node) / _GIB)
    return f"needs {needed} GiB per replica > {limit} GiB per {where}"


def too_slow(batch: float, fastest_p99_s: float, slo: float | None) -> str:
    idle = seconds(fastest_p99_s)
    return f"p99 at batch {batch:g} on an idle replica is {idle} > SLO {seconds(slo)}"


def too_many(evaluation: Evaluation, most: int, slo: float | None) -> str:
    within = f" within p99 {seconds(slo)}" if slo is not None else ""
    count = "over a million" if evaluation.replicas >= 1_000_000 else str(evaluation.replicas)
    return (
        f"needs {count} replicas for {rate(evaluation.demand_rps)} "
        f"({rate(evaluation.capacity_rps)} each{within}) > max {most}"
    )


def no_room(evaluation: Evaluation, pool: TierPool, fits: float) -> str:
    """The replicas do not fit the free room of real nodes: the resource that binds."""
    assert evaluation.need is not None
    need, count = evaluation.need, evaluation.replicas
    short = pool.shortfall(need, count)
    if short is None:  # fits now; say what was counted when the caller saw it otherwise
        return _together(need, count, int(fits), pool.tier.name)
    words = _SHORT_OF.get(short.resource)
    if words is None:
        return _together(need, count, short.fits, pool.tier.name)
    return words(need, count, short.fits, pool)


def _no_nodes(need: ReplicaNeed, count: int, room: int, pool: TierPool) -> str:
    return f"{pool.tier.name} has no nodes in the metrics snapshot"


def _no_devices(need: ReplicaNeed, count: int, room: int, pool: TierPool) -> str:
    tier = pool.tier.name
    if room == 0:
        return (
            f"needs {replicas(count)} on a free device; every device of {tier} is already allocated"
        )
    return f"needs {replicas(count)} on free devices; {tier} has {room} not allocated yet"


def _no_memory(need: ReplicaNeed, count: int, room: int, pool: TierPool) -> str:
    tier, where = pool.tier.name, "device" if need.gpu else "node"
    if room == 0:
        needed, largest = apart(need.tier_bytes / _GIB, pool.largest_slot(need.gpu) / _GIB)
        of = " of device memory" if need.gpu else ""
        return (
            f"needs {needed} GiB{of} per replica; the largest free {where} of {tier} "
            f"has {largest} GiB"
        )
    kind = "device memory" if need.gpu else "memory"
    return (
        f"needs {replicas(count)} of {gib(need.tier_bytes)}; "
        f"only {room} fit the free {kind} of {tier}"
    )


def _no_host_memory(need: ReplicaNeed, count: int, room: int, pool: TierPool) -> str:
    tier, host = pool.tier.name, gib(need.host_bytes)
    if room == 0:
        return (
            f"needs {host} of host memory per replica next to its device; "
            f"no {tier} node has that much free"
        )
    return (
        f"needs {replicas(count)} with {host} of host memory each; only {room} fit {tier}'s nodes"
    )


def _no_cores(need: ReplicaNeed, count: int, room: int, pool: TierPool) -> str:
    tier = pool.tier.name
    if room == 0:
        return f"needs {cores(need.cpu)} per replica; no {tier} node has that many free"
    return f"needs {replicas(count)} of {cores(need.cpu)}; only {room} fit the free cores of {tier}"


def _together(need: ReplicaNeed, count: int, room: int, tier: str) -> str:
    only = f"only {room}" if room else "none"
    if need.gpu:
        return (
            f"needs {replicas(count)} of {gib(need.tier_bytes)} of device memory; {only} fit "
            f"{tier}: no node has a free device, host memory and cores together"
        )
    return (
        f"needs {replicas(count)} of {gib(need.tier_bytes)} and {cores(need.cpu)}; {only} fit "
        f"{tier}: no node has enough memory and cores free together"
    )


_SHORT_OF: dict[Resource, Callable[[ReplicaNeed, int, int, TierPool], str]] = {
    Resource.NODES: _no_nodes,
    Resource.DEVICES: _no_devices,
    Resource.DEVICE_MEMORY: _no_memory,
    Resource.MEMORY: _no_memory,
    Resource.HOST_MEMORY: _no_host_memory,
    Resource.CORES: _no_cores,
}


def taken_by_others(evaluation: Evaluation) -> str:
    tier = evaluation.tier.name
    return f"no room left on {tier} once higher-priority or costlier-to-move models are placed"


def taken_by(evaluation: Evaluation, holders: Sequence[str], *, by_priority: bool) -> str:
    """The fleet gave this candidate's room to other models: who, and what decided.

    `holders` are the `namespace/name` of the models placed on the room this candidate
    needed (in the order to name them); `by_priority` is True when they won it by a higher
    `spec.priority`, False when they are of the same priority and the fleet's total cost
    decided. Without holders it falls back to `taken_by_others`.
    """
    if not holders:
        return taken_by_others(evaluation)
    names = ", ".join(holders[:_NAMED_HOLDERS])
    if len(holders) > _NAMED_HOLDERS:
        names += f" and {len(holders) - _NAMED_HOLDERS} more"
    why = "higher priority" if by_priority else "same priority; the fleet costs less this way"
    return f"no room left on {evaluation.tier.name}: taken by {names} ({why})"


def dearer(evaluation: Evaluation, chosen: Evaluation) -> str:
    assert evaluation.per_hour is not None and chosen.per_hour is not None
    if chosen.per_hour == 0:
        return f"costs {money_text(evaluation.per_hour)}/h vs nothing"
    ratio = evaluation.per_hour / chosen.per_hour
    if ratio == 1:
        return f"same cost {money_text(evaluation.per_hour)}/h, less headroom"
    theirs, ours = _money_apart(evaluation.per_hour, chosen.per_hour)
    return f"cost {_ratio(ratio)}x ({theirs}/h vs {ours}/h)"


def _ratio(ratio: Decimal) -> str:
    """Two decimals, more where two would read `1.00` for a ratio that is not 1."""
    for decimals in range(2, 12):
        text = f"{ratio:.{decimals}f}"
        if Decimal(text) != 1:
            return text
    return text


def _money_apart(a: Decimal, b: Decimal) -> tuple[str, str]:
    """`money_text` of both, with as many more significant digits as they need to differ."""
    for digits in range(4, 14):
        left, right = money_text(a, digits), money_text(b, digits)
        if left != right:
            return left, right
    return left, right


def saves_too_little(evaluation: Evaluation, current: Evaluation, margin: Decimal) -> str:
    assert evaluation.per_hour is not None and current.per_hour is not None
    saving = 1 - evaluation.per_hour / current.per_hour if current.per_hour else Decimal(0)
    theirs, ours = _money_apart(evaluation.per_hour, current.per_hour)
    return (
        f"would save {pct(float(saving))} ({theirs}/h vs {ours}/h), "
        f"under the {pct(float(margin))} switch margin"
    )


def in_dwell(minutes_left: float) -> str:
    return f"cheaper, but the tier changed recently: {minutes_left:.0f} min of minimum dwell left"


def scaling_first(observed_s: float, slo: float) -> str:
    return (
        f"cheaper, but the running plan's observed p99 {seconds(observed_s)} > SLO "
        f"{seconds(slo)}: it scales out first"
    )


def stale_metrics() -> str:
    return "cheaper, but metrics are stale: no tier change until they are fresh"


def chosen(evaluation: Evaluation, slo: float | None, baseline: Decimal | None) -> str:
    """`int8 on cpu-large: 2 replicas meet p99 50ms (predicted 21ms) at 40% of ...`."""
    key = evaluation.key
    who = f"{key.variant} " if key.variant != "primary" else ""
    head = f"{who}{key.precision} on {key.tier_class}: {evaluation.replicas} replica(s)"
    if slo is not None:
        head += f" meet p99 {seconds(slo)} (predicted {seconds(evaluation.predicted_p99_s)})"
    head += f" for {rate(evaluation.demand_rps)}, {money_text(evaluation.per_hour)}/h"
    if baseline and evaluation.per_hour is not None:
        head += f", {pct(float(evaluation.per_hour / baseline))} of the fp16-on-GPU baseline"
    if evaluation.figures.estimated:
        head += f" (estimated: {', '.join(evaluation.figures.estimated)})"
    return head
