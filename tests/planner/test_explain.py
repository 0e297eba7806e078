"""Reasons an SRE reads: plain numbers, a dearer option that reads dearer, who took the room."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tierwise_operator.api import Precision
from tierwise_operator.planner import explain
from tierwise_operator.planner.candidates import CandidateKey
from tierwise_operator.planner.evaluate import Evaluation, Stage
from tierwise_operator.planner.figures import Figures

from .conftest import GiB, tier

GPU = tier("gpu-h100", "gpu", memory="80Gi", devices=8)


def option(per_hour: str, precision: Precision = Precision.FP16) -> Evaluation:
    figures = Figures(GiB, 2 * GiB, 0, 0.0, None, 2.0)
    key = CandidateKey("primary", precision, GPU.name)
    return Evaluation(key, GPU, figures, None, 1, 10.0, 1, None, Decimal(per_hour), Stage.FEASIBLE)


@pytest.mark.parametrize(
    ("rps", "text"),
    [
        (4823.4, "4823 req/s"),
        (3000.0, "3000 req/s"),
        (48.0, "48 req/s"),
        (1.126, "1.13 req/s"),
        (0.000123, "0.000123 req/s"),
        (2.5e7, "25000000 req/s"),
        (0.0, "0 req/s"),
    ],
)
def test_rates_are_written_in_plain_notation(rps: float, text: str) -> None:
    assert explain.rate(rps) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0752, "75.2ms"), (88.3, "88.3s"), (150_000.0, "2500min"), (1e-8, "0.00001ms")],
)
def test_durations_are_written_in_plain_notation(value: float, text: str) -> None:
    assert explain.seconds(value) == text


def test_sizes_and_cores_are_written_in_plain_notation() -> None:
    assert explain.gib(1500 * GiB) == "1500 GiB"
    assert explain.cores(2_000_000) == "2000000 cores"


def test_a_dearer_option_shows_enough_digits_to_read_dearer() -> None:
    why = explain.dearer(option("4.0552"), option("4.052", Precision.INT4))
    assert why == "cost 1.001x (4.055/h vs 4.052/h)"
    close = explain.dearer(option("4.05201"), option("4.052", Precision.INT4))
    assert close == "cost 1.000002x (4.05201/h vs 4.052/h)"


def test_a_clearly_dearer_option_keeps_two_decimals() -> None:
    assert explain.dearer(option("8.10"), option("4.05")) == "cost 2.00x (8.1/h vs 4.05/h)"


def test_a_saving_under_the_margin_shows_prices_that_differ() -> None:
    why = explain.saves_too_little(option("4.05199"), option("4.052"), Decimal("0.1"))
    assert "(4.05199/h vs 4.052/h)" in why


@pytest.mark.parametrize(
    ("holders", "by_priority", "text"),
    [
        (["prod/vip"], True, "no room left on gpu-h100: taken by prod/vip (higher priority)"),
        (
            ["a/x", "a/y"],
            False,
            "no room left on gpu-h100: taken by a/x, a/y "
            "(same priority; the fleet costs less this way)",
        ),
        (
            ["a/1", "a/2", "a/3", "a/4", "a/5"],
            True,
            "no room left on gpu-h100: taken by a/1, a/2, a/3 and 2 more (higher priority)",
        ),
    ],
)
def test_no_room_left_names_who_took_it_and_what_decided(
    holders: list[str], by_priority: bool, text: str
) -> None:
    assert explain.taken_by(option("4.0"), holders, by_priority=by_priority) == text


def test_no_room_left_without_known_holders_says_so_in_general_terms() -> None:
    why = explain.taken_by(option("4.0"), [], by_priority=True)
    assert why == explain.taken_by_others(option("4.0"))


@pytest.mark.parametrize(
    ("fraction", "text"), [(0.029, "2.9%"), (0.1, "10%"), (0.0, "0%"), (0.0000123, "0.001%")]
)
def test_a_tiny_percentage_does_not_read_as_zero(fraction: float, text: str) -> None:
    assert explain.pct(fraction) == text
