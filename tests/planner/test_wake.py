"""Wake from zero: a recent demand signal from the gateway is a floor of one replica."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.planner import ChangeKind, decide
from tierwise_operator.planner.settings import PlannerSettings
from tierwise_operator.planner.wake import (
    DEMAND_ANNOTATION,
    demand_patch,
    replica_floor,
    with_floor,
)

from .conftest import EMBEDDER, NOW, later, model, running

HOLD = timedelta(minutes=5)


def signalled(m: InferenceModel, stamp: str) -> InferenceModel:
    meta = m.metadata.model_copy(update={"annotations": {DEMAND_ANNOTATION: stamp}})
    return m.model_copy(update={"metadata": meta})


def stamp(minutes_ago: float) -> str:
    return demand_patch(later(-minutes_ago))["metadata"]["annotations"][DEMAND_ANNOTATION]


def test_the_patch_the_gateway_sends_is_an_rfc3339_utc_annotation() -> None:
    assert demand_patch(NOW) == {
        "metadata": {"annotations": {DEMAND_ANNOTATION: "2026-11-25T10:00:00Z"}}
    }


@pytest.mark.parametrize(
    ("value", "floor"),
    [
        (stamp(0), 1),
        (stamp(4.9), 1),
        (stamp(5.1), 0),  # the hold is over: measured traffic speaks for the model
        ("2026-11-25T12:00:00Z", 0),  # from the future: a clock gone wrong wakes nothing
        ("yesterday", 0),
        ("2026-11-25T10:00:00", 0),  # no timezone: unreadable, ignored
        ("", 0),
    ],
)
def test_a_demand_signal_holds_one_replica_while_recent(value: str, floor: int) -> None:
    assert replica_floor(signalled(model(replicas=(0, 4)), value), NOW, HOLD) == floor


def test_no_annotation_no_floor() -> None:
    assert replica_floor(model(replicas=(0, 4)), NOW, HOLD) == 0


def test_the_floor_raises_min_replicas_but_never_lowers_it_nor_passes_max() -> None:
    assert with_floor(model(replicas=(0, 4)), 1).spec.replicas.min == 1
    assert with_floor(model(replicas=(2, 4)), 1).spec.replicas.min == 2
    assert with_floor(model(replicas=(0, 4)), 0).spec.replicas.min == 0


def test_a_model_at_zero_is_woken_on_its_cheapest_candidate_by_a_demand_signal(
    three_tiers: list[TierClass],
) -> None:
    idle = model(rps=None, replicas=(0, 4), **EMBEDDER)
    first = decide(idle, three_tiers, NOW)
    assert first.replicas == 0
    asleep = running(idle, first)
    woken = decide(signalled(asleep, stamp(0)), three_tiers, later(1))
    # At zero replicas every candidate cost nothing; waking, it moves to the cheapest at
    # once (no dwell, no margin: nothing running is disturbed).
    assert str(first.chosen.key if first.chosen else "") == "fp16/cpu"
    assert woken.change is ChangeKind.RE_PRECISION
    assert woken.replicas == 1
    assert str(woken.chosen.key if woken.chosen else "") == "int8/cpu"
    assert woken.reason.startswith("woken by traffic: int8 on cpu: 1 replica(s)")


def test_after_the_hold_an_idle_model_scales_back_to_zero(three_tiers: list[TierClass]) -> None:
    settings = PlannerSettings(scale_down_window=timedelta(0))
    idle = model(rps=None, replicas=(0, 4), **EMBEDDER)
    woken = signalled(idle, stamp(0))
    awake = signalled(running(woken, decide(woken, three_tiers, NOW, settings=settings)), stamp(0))
    assert awake.status is not None and awake.status.replicas == 1
    held = decide(awake, three_tiers, later(4), settings=settings)
    assert held.replicas == 1 and held.reason.startswith("woken by traffic")
    after = running(awake, decide(awake, three_tiers, later(6), settings=settings))
    asleep = decide(after, three_tiers, later(6.5), settings=settings)
    assert (asleep.change, asleep.replicas) == (ChangeKind.SCALE_DOWN, 0)
    assert "woken" not in asleep.reason
