"""Conditions follow metav1.Condition semantics: transition time moves only when status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tierwise_operator import conditions as cond
from tierwise_operator.api import ConditionStatus

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_setting_a_new_condition_stamps_time_and_generation() -> None:
    out = cond.set_condition([], cond.READY, status=False, reason="Planning",
                             message="waiting for a profile", generation=3, now=T0)  # fmt: skip
    (ready,) = out
    assert (ready.type, ready.status, ready.reason) == ("Ready", ConditionStatus.FALSE, "Planning")
    assert ready.last_transition_time == "2026-11-25T10:00:00Z"
    assert ready.observed_generation == 3


def test_same_status_keeps_transition_time_but_updates_message() -> None:
    first = cond.set_condition([], cond.READY, status=True, reason="Serving", message="a",
                               generation=1, now=T0)  # fmt: skip
    later = cond.set_condition(first, cond.READY, status=True, reason="Serving", message="b",
                               generation=2, now=T0 + timedelta(hours=1))  # fmt: skip
    assert later[0].last_transition_time == "2026-11-25T10:00:00Z"
    assert (later[0].message, later[0].observed_generation) == ("b", 2)


def test_flipping_status_moves_transition_time() -> None:
    first = cond.set_condition([], cond.READY, status=True, reason="Serving", message="",
                               generation=1, now=T0)  # fmt: skip
    flipped = cond.set_condition(first, cond.READY, status=False, reason="Degraded", message="",
                                 generation=1, now=T0 + timedelta(minutes=5))  # fmt: skip
    assert flipped[0].last_transition_time == "2026-11-25T10:05:00Z"
    assert not cond.is_true(flipped, cond.READY)


def test_conditions_keep_a_stable_order() -> None:
    out: list = []
    for type_ in reversed(cond.ALL_TYPES):
        out = cond.set_condition(out, type_, status=True, reason="X", message="", generation=1,
                                 now=T0)  # fmt: skip
    assert [c.type for c in out] == list(cond.ALL_TYPES)
