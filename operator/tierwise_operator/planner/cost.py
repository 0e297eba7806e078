"""TCO of a plan: each replica's share of a node-hour plus its memory GiB-hours, in Decimal."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from ..api import TierClass, TierKind
from .capacity import ReplicaNeed

_GIB = Decimal(2**30)
_SECONDS_PER_HOUR = Decimal(3600)


def node_share(tier: TierClass, need: ReplicaNeed) -> Decimal:
    """The fraction of a node one replica occupies: its device, or its dominant resource."""
    spec = tier.spec
    if spec.kind is TierKind.GPU:
        return Decimal(1) / Decimal(spec.devices_per_node)
    share = Decimal(need.tier_bytes) / Decimal(int(spec.memory_per_node))
    if spec.cpu_per_node:
        share = max(share, _decimal(need.cpu) / _decimal(spec.cpu_per_node))
    return share


def replica_hour(tier: TierClass, need: ReplicaNeed) -> Decimal:
    """Cost of one replica for one hour: node-hour share + memory GiB-hours x price."""
    pricing = tier.spec.pricing
    memory = Decimal(need.tier_bytes) / _GIB * pricing.per_gib_hour
    return pricing.per_node_hour * node_share(tier, need) + memory


def replica_hour_estimate(tier: TierClass, need: ReplicaNeed) -> float:
    """`replica_hour` in floats, for ranking many sizings quickly; never reported."""
    spec = tier.spec
    if spec.kind is TierKind.GPU:
        share = 1.0 / spec.devices_per_node
    else:
        share = need.tier_bytes / spec.memory_per_node
        if spec.cpu_per_node:
            share = max(share, need.cpu / spec.cpu_per_node)
    gib = need.tier_bytes / 2**30
    return float(spec.pricing.per_node_hour) * share + gib * float(spec.pricing.per_gib_hour)


def per_1k(per_hour: Decimal, rps: float) -> Decimal | None:
    """Cost of 1,000 inferences at `rps` requests per second (None without traffic)."""
    if rps <= 0:
        return None
    return per_hour / (_decimal(rps) * _SECONDS_PER_HOUR) * 1000


def money(value: Decimal, digits: int = 4) -> Decimal:
    """Round for display to `digits` significant digits (never below 1e-9, never exponent form)."""
    if value == 0:
        return Decimal(0)
    exponent = value.adjusted() - digits + 1
    quantum = Decimal(1).scaleb(max(exponent, -9))
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN).normalize()


def money_text(value: Decimal | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return format(money(value, digits), "f")


def _decimal(x: float) -> Decimal:
    return Decimal(repr(float(x)))
