"""Reasons in words an SRE reads in `kubectl describe`: figures, units, and the broken limit."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..api import TierClass, TierKind
from .cost import money_text

if TYPE_CHECKING:
    from .capacity import ReplicaNeed, TierPool
    from .evaluate import Evaluation
    from .snapshot import FailedKey

_GIB = 2**30


def pct(fraction: float) -> str:
    """`0.029` -> `2.9%` (up to two decimals, trailing zeros dropped)."""
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.3g}ms"
    if value < 120:
        return f"{value:.3g}s"
    return f"{value / 60:.3g}min"


def gib(n: int) -> str:
    return f"{n / _GIB:.3g} GiB"


def rate(rps: float) -> str:
    return f"{rps:.3g} req/s"


def failed(fail: FailedKey) -> str:
    return f"{fail.reason}; excluded until {fail.retry_after.isoformat()}"


def accuracy(delta: float, budget: float) -> str:
    return f"accuracy delta {pct(delta)} > budget {pct(budget)}"


def accuracy_unknown(variant: str) -> str:
    return f"accuracy of variant {variant!r} not measured yet (a distilled model must be profiled)"


def too_big(need: ReplicaNeed, tier: TierClass) -> str:
    where = "device" if tier.spec.kind is TierKind.GPU else "node"
    limit = tier.spec.memory_per_node
    if need.tier_bytes > limit:
        return f"needs {gib(need.tier_bytes)} per replica > {gib(int(limit))} per {where}"
    return f"needs {need.cpu:g} cores per replica > {tier.spec.cpu_per_node:g} per node"


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
    assert evaluation.need is not None
    need = evaluation.need
    slot = pool.largest_slot(need.gpu)
    where = "device" if need.gpu else "node"
    if fits == 0:
        return (
            f"needs {gib(need.tier_bytes)} per replica; the largest free {where} of "
            f"{pool.tier.name} has {gib(slot)}"
        )
    return (
        f"needs {evaluation.replicas} replicas of {gib(need.tier_bytes)}; only {int(fits)} fit "
        f"the free memory of {pool.tier.name}"
    )


def taken_by_others(evaluation: Evaluation) -> str:
    tier = evaluation.tier.name
    return f"no room left on {tier} once higher-priority or costlier-to-move models are placed"


def dearer(evaluation: Evaluation, chosen: Evaluation) -> str:
    assert evaluation.per_hour is not None and chosen.per_hour is not None
    if chosen.per_hour == 0:
        return f"costs {money_text(evaluation.per_hour)}/h vs nothing"
    ratio = evaluation.per_hour / chosen.per_hour
    if ratio == 1:
        return f"same cost {money_text(evaluation.per_hour)}/h, less headroom"
    return (
        f"cost {ratio:.2f}x ({money_text(evaluation.per_hour)}/h vs "
        f"{money_text(chosen.per_hour)}/h)"
    )


def saves_too_little(evaluation: Evaluation, current: Evaluation, margin: Decimal) -> str:
    assert evaluation.per_hour is not None and current.per_hour is not None
    saving = 1 - evaluation.per_hour / current.per_hour if current.per_hour else Decimal(0)
    return (
        f"would save {pct(float(saving))} ({money_text(evaluation.per_hour)}/h vs "
        f"{money_text(current.per_hour)}/h), under the {pct(float(margin))} switch margin"
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
