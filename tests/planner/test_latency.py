"""The latency model: interpolated batches, p99 = batch p99 x (1 + utilisation), capacity."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise_operator.api import LatencyPoint
from tierwise_operator.planner.latency import LatencyCurve


def curve(*points: tuple[int, float, float]) -> LatencyCurve:
    made = LatencyCurve.from_points(
        LatencyPoint(batch=b, p50_ms=p, p99_ms=p, throughput=t) for b, p, t in points
    )
    assert made is not None
    return made


def test_without_an_slo_capacity_is_the_best_throughput() -> None:
    c = curve((1, 10, 100), (8, 40, 200), (32, 200, 160))
    assert c.capacity(None) == (200, 8)


def test_capacity_meets_the_slo_at_full_load() -> None:
    # Batch 1: p99 10 ms; with an SLO of 15 ms a replica may be half busy: 50 req/s.
    c = curve((1, 10, 100))
    rate, _batch = c.capacity(0.015)
    assert rate == pytest.approx(50)
    assert c.predicted_p99(rate) == pytest.approx(0.015)


def test_an_slo_below_the_idle_latency_leaves_no_capacity() -> None:
    c = curve((1, 60, 20), (8, 200, 50))
    assert c.capacity(0.050) == (0.0, 1)
    assert c.fastest_p99_s == pytest.approx(0.060)


def test_interpolation_finds_a_better_batch_between_measured_ones() -> None:
    c = curve((1, 10, 100), (32, 400, 1000))
    rate, batch = c.capacity(0.2)
    assert 1 < batch < 32
    assert rate > max(100 * min(1, 0.2 / 0.01 - 1), 1000 * max(0, min(1, 0.2 / 0.4 - 1)))


def test_the_memory_batch_limit_caps_capacity() -> None:
    c = curve((1, 10, 100), (8, 40, 300), (32, 200, 600))
    assert c.capacity(None, max_batch=8) == (300, 8)
    assert c.predicted_p99(400, max_batch=8) is None


def test_points_without_throughput_make_no_curve() -> None:
    assert (
        LatencyCurve.from_points([LatencyPoint(batch=1, p50_ms=1, p99_ms=1, throughput=0)]) is None
    )


def test_a_faster_replica_scales_throughput_up_and_latency_down() -> None:
    c = curve((1, 10, 100)).scaled(2.0)
    assert (c.grid[0].p99_s, c.grid[0].throughput) == (pytest.approx(0.005), 200)


points = st.lists(
    st.tuples(
        st.integers(1, 64),
        st.floats(0.5, 2000),
        st.floats(0.1, 5000),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda p: p[0],
)


@given(points, st.floats(0.001, 10.0), st.floats(0.0, 1.0))
def test_predicted_p99_is_within_the_slo_exactly_up_to_capacity(
    pts: list[tuple[int, float, float]], slo: float, share: float
) -> None:
    c = curve(*pts)
    rate, _ = c.capacity(slo)
    if rate <= 0:
        return
    p99 = c.predicted_p99(rate * share)
    assert p99 is not None and p99 <= slo * (1 + 1e-9)
    beyond = c.predicted_p99(rate * 1.001 + 1e-9)
    assert beyond is None or beyond > slo * (1 - 1e-6) or math.isclose(beyond, slo, rel_tol=1e-3)
