"""Kubernetes-style quantities parse the forms people write and print one canonical form."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from tierwise_operator.api import Bandwidth, Duration, Memory, Percentage, Price
from tierwise_operator.api.errors import format_validation_error


@pytest.mark.parametrize(
    ("raw", "value", "canonical"),
    [
        ("80Gi", 80 * 2**30, "80Gi"),
        ("512Mi", 512 * 2**20, "512Mi"),
        ("1.5e9", 1_500_000_000, "1500M"),
        ("1.5Gi", 1536 * 2**20, "1536Mi"),
        (1024, 1024, "1Ki"),
        ("64G", 64 * 10**9, "64G"),
        ("100k", 100_000, "100k"),
        ("12345", 12345, "12345"),
        (0, 0, "0"),
    ],
)
def test_memory_parses_kubernetes_quantities(raw: object, value: int, canonical: str) -> None:
    parsed = Memory.parse(raw)
    assert int(parsed) == value
    assert str(parsed) == canonical


@pytest.mark.parametrize(
    ("raw", "seconds", "canonical"),
    [
        ("50ms", 0.05, "50ms"),
        ("2s", 2.0, "2s"),
        ("15m", 900.0, "15m"),
        ("1h30m", 5400.0, "90m"),
        ("2.5s", 2.5, "2.5s"),
        ("250us", 250e-6, "250us"),
        ("1h", 3600.0, "1h"),
    ],
)
def test_duration_parses_go_style_durations(raw: str, seconds: float, canonical: str) -> None:
    parsed = Duration.parse(raw)
    assert float(parsed) == pytest.approx(seconds)
    assert str(parsed) == canonical


@pytest.mark.parametrize(
    ("raw", "fraction", "canonical"),
    [("2%", 0.02, "2%"), ("0.5%", 0.005, "0.5%"), (0.02, 0.02, "2%"), ("0.02", 0.02, "2%"),
     ("100%", 1.0, "100%"), (0, 0.0, "0%")],
)  # fmt: skip
def test_percentage_accepts_percent_or_fraction(
    raw: object, fraction: float, canonical: str
) -> None:
    parsed = Percentage.parse(raw)
    assert float(parsed) == pytest.approx(fraction)
    assert str(parsed) == canonical


def test_price_stays_an_exact_decimal() -> None:
    assert Price.parse("32.00") == Decimal("32.00")
    assert str(Price.parse("32.00")) == "32.00"
    assert Price.parse("0.1") + Price.parse("0.2") == Decimal("0.3")
    assert str(Price.parse(4)) == "4"


def test_bandwidth_reads_units_per_second() -> None:
    assert float(Bandwidth.parse("3GB/s")) == 3e9
    assert float(Bandwidth.parse("500MiB/s")) == 500 * 2**20
    assert str(Bandwidth.parse("3GB/s")) == "3GB/s"


@pytest.mark.parametrize(
    ("cls", "raw", "message"),
    [
        (Memory, "lots", '"lots" is not a memory quantity (examples: 512Mi, 80Gi, 1.5e9)'),
        (Memory, "-1Gi", "memory cannot be negative"),
        (Memory, "1.5", "whole number of bytes"),
        (Memory, True, "is not a memory quantity"),
        (Duration, "fast", '"fast" is not a duration (examples: 50ms, 2s, 15m)'),
        (Duration, 50, "50 is not a duration"),
        (Percentage, "2 percent", '"2 percent" is not a percentage'),
        (Percentage, -0.1, "is not a percentage"),
        (Price, "$4", '"$4" is not a price'),
        (Price, "-1", "non-negative"),
        (Bandwidth, "3GB", '"3GB" is not a bandwidth'),
    ],
)
def test_bad_values_name_the_accepted_forms(cls: type, raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls._validate(raw)


class _Slo(BaseModel):
    latency_p99: Duration = Field(alias="latencyP99")


def test_validation_errors_name_the_field_path() -> None:
    with pytest.raises(ValidationError) as info:
        _Slo.model_validate({"latencyP99": "fast"})
    assert format_validation_error(info.value, "spec.slo") == [
        'spec.slo.latencyP99: "fast" is not a duration (examples: 50ms, 2s, 15m)'
    ]


@given(st.integers(min_value=0, max_value=2**62))
def test_memory_canonical_form_parses_back_to_the_same_bytes(value: int) -> None:
    assert Memory.parse(str(Memory.parse(value))) == value


@given(st.integers(min_value=1, max_value=10**7), st.sampled_from(["us", "ms", "s", "m", "h"]))
def test_duration_canonical_form_parses_back(amount: int, unit: str) -> None:
    parsed = Duration.parse(f"{amount}{unit}")
    assert float(Duration.parse(str(parsed))) == pytest.approx(float(parsed), rel=1e-6)


@given(st.decimals(min_value=0, max_value=100, places=3, allow_nan=False))
def test_percentage_canonical_form_parses_back(pct: Decimal) -> None:
    parsed = Percentage.parse(f"{pct}%")
    assert float(Percentage.parse(str(parsed))) == pytest.approx(float(parsed), abs=1e-12)


@given(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False))
def test_price_round_trips_exactly(amount: Decimal) -> None:
    assert Price.parse(str(Price.parse(str(amount)))) == amount
