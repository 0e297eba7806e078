"""TCO: a replica pays its share of a node-hour plus its memory GiB-hours, in exact decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tierwise_operator.planner.capacity import ReplicaNeed
from tierwise_operator.planner.cost import money, money_text, node_share, per_1k, replica_hour

from .conftest import GiB, tier

H100 = tier("gpu", "gpu", memory="80Gi", price="32.00", per_gib="0.05", devices=8)
M7I = tier("cpu", memory="64Gi", price="0.81", per_gib="0.004", cpu=16)


def test_a_gpu_replica_pays_one_device_and_its_memory() -> None:
    need = ReplicaNeed(10 * GiB, 2 * GiB, 2, gpu=True)
    assert node_share(H100, need) == Decimal("0.125")
    assert replica_hour(H100, need) == Decimal("4.00") + Decimal("0.50")


@pytest.mark.parametrize(
    ("gib", "cores", "share"),
    [(16, 2, Decimal("0.25")), (4, 8, Decimal("0.5")), (32, 8, Decimal("0.5"))],
)
def test_a_cpu_replica_pays_its_dominant_resource(gib: int, cores: float, share: Decimal) -> None:
    need = ReplicaNeed(gib * GiB, gib * GiB, cores, gpu=False)
    assert node_share(M7I, need) == share
    assert replica_hour(M7I, need) == Decimal("0.81") * share + Decimal("0.004") * gib


def test_cost_per_1k_inferences_follows_traffic() -> None:
    assert per_1k(Decimal("3.6"), 1.0) == Decimal("1")
    assert per_1k(Decimal("3.6"), 0.0) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("1.2345678"), "1.235"), (Decimal("0.000012345"), "0.00001234"),
     (Decimal("12345.6"), "12350"), (Decimal("0"), "0"), (Decimal("4.50"), "4.5")],
)  # fmt: skip
def test_money_is_rounded_to_significant_digits_without_exponents(
    value: Decimal, text: str
) -> None:
    assert money_text(value) == text
    assert money(value) == Decimal(text)
