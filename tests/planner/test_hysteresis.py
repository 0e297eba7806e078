"""Plans hold steady: a margin to switch, a minimum dwell, immediate scale-up and a
stabilisation window for scale-down; a broken plan moves at once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.planner import ChangeKind, CurrentPlan, Plan, PlannerSettings, decide
from tierwise_operator.planner.candidates import CandidateKey

from .conftest import (
    EMBEDDER,
    NOW,
    entry,
    later,
    metrics,
    model,
    point,
    profile,
    running,
    snapshot,
    tier,
)  # fmt: skip

EMBED = model(rps=40, **EMBEDDER)


def on(candidate: str, replicas: int = 1, changed_minutes_ago: float = 60) -> CurrentPlan:
    return CurrentPlan(
        CandidateKey.parse(candidate), replicas, tier_changed_at=later(-changed_minutes_ago)
    )


def why(plan: object, candidate: str) -> str:
    return next(r.why for r in plan.rejected if r.candidate == candidate)  # type: ignore[attr-defined]


def test_a_small_saving_does_not_move_the_model(three_tiers: list[TierClass]) -> None:
    plan = decide(EMBED, three_tiers, NOW, current=on("fp32/cpu"))
    assert plan.change is ChangeKind.KEPT and plan.precision == "fp32"
    assert why(plan, "int8/cpu").startswith("would save 0.")
    assert why(plan, "int8/cpu").endswith("under the 10% switch margin")


def test_a_large_saving_moves_the_model_once_the_dwell_time_is_over(
    three_tiers: list[TierClass],
) -> None:
    plan = decide(EMBED, three_tiers, NOW, current=on("fp16/gpu"))
    assert (plan.change, plan.tier_class) == (ChangeKind.RE_TIER, "cpu")
    assert plan.tier_changed_at == NOW


def test_no_tier_change_inside_the_minimum_dwell(three_tiers: list[TierClass]) -> None:
    plan = decide(EMBED, three_tiers, NOW, current=on("fp16/gpu", changed_minutes_ago=5))
    assert plan.change is ChangeKind.KEPT and plan.tier_class == "gpu"
    assert why(plan, "int8/cpu") == (
        "cheaper, but the tier changed recently: 10 min of minimum dwell left"
    )


def test_a_plan_that_breaks_a_constraint_moves_even_inside_the_dwell(
    three_tiers: list[TierClass],
) -> None:
    plan = decide(EMBED, three_tiers, NOW, current=on("int4/cpu", changed_minutes_ago=1))
    assert (plan.change, plan.precision) == (ChangeKind.RE_PRECISION, "int8")


def test_stale_metrics_never_change_the_tier(three_tiers: list[TierClass]) -> None:
    stale = snapshot(metrics(40, at=later(-20)), at=later(-20))
    plan = decide(EMBED, three_tiers, NOW, snapshot=stale, current=on("fp16/gpu"))
    assert plan.change is ChangeKind.KEPT
    assert (
        why(plan, "int8/cpu")
        == "cheaper, but metrics are stale: no tier change until they are fresh"
    )


def test_scale_up_is_immediate(three_tiers: list[TierClass]) -> None:
    busy = snapshot(metrics(900))
    plan = decide(EMBED, three_tiers, NOW, snapshot=busy, current=on("int8/cpu"))
    assert (plan.change, plan.replicas, plan.scaled_at) == (ChangeKind.SCALE_UP, 4, NOW)


def replan(m: InferenceModel, tiers: list[TierClass], minute: float, rps: float) -> Plan:
    """Plan `m` `minute` minutes after NOW with `rps` observed just then."""
    seen = snapshot(metrics(rps, at=later(minute)), at=later(minute))
    return decide(m, tiers, later(minute), snapshot=seen)


def test_scale_down_waits_for_the_stabilisation_window(three_tiers: list[TierClass]) -> None:
    """Traffic drops at minute 2: the 4-replica recommendation stood until then, so the
    model scales down once 5 minutes of lower recommendations have passed, not before."""
    m = running(EMBED, decide(EMBED, three_tiers, NOW, snapshot=snapshot(metrics(900))))
    assert m.status is not None and m.status.replicas == 4

    quiet = replan(m, three_tiers, 2, 40)
    assert (quiet.change, quiet.replicas) == (ChangeKind.KEPT, 4)
    m = running(m, quiet)
    still = replan(m, three_tiers, 6, 40)
    assert (still.change, still.replicas) == (ChangeKind.KEPT, 4)
    settled = replan(m, three_tiers, 7.5, 40)
    assert (settled.change, settled.replicas) == (ChangeKind.SCALE_DOWN, 1)


def test_scale_down_goes_only_to_the_highest_recommendation_in_force_in_the_window(
    three_tiers: list[TierClass],
) -> None:
    m = running(EMBED, decide(EMBED, three_tiers, NOW, snapshot=snapshot(metrics(900))))

    m = running(m, replan(m, three_tiers, 3, 500))  # 2 replicas would do from minute 3
    m = running(
        m, replan(m, three_tiers, 6, 40)
    )  # 1 would do from minute 6; 4 stood until minute 3
    assert m.status is not None and m.status.replicas == 4
    plan = replan(m, three_tiers, 8.5, 40)  # the window (3.5..8.5) saw 2, then 1
    assert (plan.change, plan.replicas) == (ChangeKind.SCALE_DOWN, 2)


def test_a_plan_that_holds_adds_nothing_to_the_recommendation_history(
    three_tiers: list[TierClass],
) -> None:
    m = running(EMBED, decide(EMBED, three_tiers, NOW, snapshot=snapshot(metrics(900))))
    first = m.status.replica_recommendations if m.status else None
    for minute in (0.5, 1, 10, 60):
        plan = replan(m, three_tiers, minute, 900)
        m = running(m, plan)
        assert plan.change is ChangeKind.KEPT
    assert m.status is not None and m.status.replica_recommendations == first


def test_an_observed_slo_breach_adds_a_replica(three_tiers: list[TierClass]) -> None:
    slow = snapshot(metrics(40, p99="150ms"))
    plan = decide(EMBED, three_tiers, NOW, snapshot=slow, current=on("int8/cpu"))
    assert (plan.change, plan.replicas) == (ChangeKind.SCALE_UP, 2)
    assert "observed p99 150ms > SLO 100ms: it scales out first" in why(plan, "fp32/cpu")


def test_oscillating_traffic_flips_a_marginless_plan_only_after_the_dwell() -> None:
    """fp16 serves 100 req/s per 0.25/h replica, int8 160 req/s per 0.35/h replica: at 190
    req/s fp16 is cheaper (2 x 0.25 < 2 x 0.35), at 210 int8 is (2 x 0.35 < 3 x 0.25)."""
    tiers = [tier("cpu", price="1.00", per_gib="0", cpu=16)]
    prof = profile(
        entry("fp16", "cpu", 0.5, 0.0, [point(1, 10, 100)], peak_gib=1),
        entry("int8", "cpu", 0.4, 0.0, [point(1, 10, 160)], peak_gib=22.4),
    )
    m = model(rps=0, slo=None, precisions=["fp16", "int8"], prof=prof)
    no_margin = PlannerSettings(switch_margin=Decimal(0))

    def at(minute: float, rps: float) -> Plan:
        nonlocal m
        plan = decide(m, tiers, later(minute), snapshot=snapshot(metrics(rps, at=later(minute)),
                      at=later(minute)), settings=no_margin)  # fmt: skip
        m = running(m, plan)
        return plan

    assert (at(0, 190).precision, at(2, 210).precision, at(4, 190).precision) == ("fp16",) * 3
    assert at(16, 210).change is ChangeKind.RE_PRECISION
    assert at(18, 190).change is ChangeKind.KEPT  # int8 just moved in: its dwell starts anew


def test_one_breach_measurement_adds_one_replica_however_often_it_is_replanned(
    three_tiers: list[TierClass],
) -> None:
    """The same slow p99 seen by many re-plans in a row must not ramp replicas each time:
    it is answered again only once measured after the last scale had time to show."""
    slow = snapshot(metrics(40, p99="150ms"))
    m = running(EMBED, decide(EMBED, three_tiers, NOW, snapshot=slow, current=on("int8/cpu")))
    for seconds in (1, 2, 5, 10):
        plan = decide(m, three_tiers, NOW + timedelta(seconds=seconds), snapshot=slow)
        m = running(m, plan)
    assert plan.replicas == 2 and plan.change is ChangeKind.KEPT
    settled = NOW + timedelta(minutes=6)
    later_slow = snapshot(metrics(40, p99="150ms", at=settled), at=settled)
    again = decide(m, three_tiers, settled, snapshot=later_slow)
    assert (again.change, again.replicas) == (ChangeKind.SCALE_UP, 3)
