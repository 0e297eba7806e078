"""Fleet-wide assignment: models compete for scarce rooms; priority first, then total cost."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.api import TierClass
from tierwise_operator.planner import PlannerSettings, decide
from tierwise_operator.planner.fleet import plan_fleet

from .conftest import EMBEDDER, NOW, model, snapshot


def nodes(free_devices: int, cpu_nodes: int = 8) -> list[dict[str, Any]]:
    gpu = {"name": "g1", "tierClass": "gpu", "freeMemory": "1Ti", "freeCpu": 180,
           "devices": [{"free": "80Gi"}] * free_devices
           + [{"free": "1Gi", "allocated": True}] * (8 - free_devices)}  # fmt: skip
    cpus = [
        {"name": f"c{i}", "tierClass": "cpu", "freeMemory": "64Gi", "freeCpu": 16}
        for i in range(cpu_nodes)
    ]
    return [gpu, *cpus]


ONE_GPU = snapshot(nodes=nodes(1))


def fleet_model(name: str, rps: float, priority: int = 0) -> Any:
    return model(name, rps=rps, priority=priority, replicas=(1, 64), tiers=["gpu", "cpu"],
                 **EMBEDDER)  # fmt: skip


def placed(fleet: Any) -> dict[str, str | None]:
    return {p.model.split("/")[1]: p.tier_class for p in fleet.plans}


@pytest.mark.parametrize("solver", ["exact", "heuristic"])
def test_the_bigger_saving_gets_the_only_free_gpu(
    solver: str, three_tiers: list[TierClass]
) -> None:
    models = [fleet_model("small-saving", 5000), fleet_model("big-saving", 6000)]
    fleet = plan_fleet(models, three_tiers, NOW, snapshot=ONE_GPU, solver=solver)
    assert placed(fleet) == {"small-saving": "cpu", "big-saving": "gpu"}
    assert fleet.solver == solver


@pytest.mark.parametrize("solver", ["exact", "heuristic"])
def test_a_higher_priority_is_never_displaced_by_a_bigger_saving(
    solver: str, three_tiers: list[TierClass]
) -> None:
    models = [fleet_model("vip", 5000, priority=100), fleet_model("big-saving", 6000)]
    fleet = plan_fleet(models, three_tiers, NOW, snapshot=ONE_GPU, solver=solver)
    assert placed(fleet) == {"vip": "gpu", "big-saving": "cpu"}
    lost = next(
        r.why for r in fleet.plan_for("default/big-saving").rejected if r.candidate == "fp16/gpu"
    )
    assert lost == "no room left on gpu: taken by default/vip (higher priority)"


def test_a_model_without_room_for_all_its_replicas_runs_short_and_says_who_holds_the_gpu(
    three_tiers: list[TierClass],
) -> None:
    models = [fleet_model("vip", 6000, priority=1), fleet_model("late", 6000)]
    fleet = plan_fleet(models, three_tiers, NOW, snapshot=snapshot(nodes=nodes(1, cpu_nodes=1)))
    assert placed(fleet) == {"vip": "gpu", "late": "cpu"}
    late = fleet.plan_for("default/late")
    assert late.displacement is not None and late.displacement.replicas_short > 0
    assert "no room for fp16/gpu: default/vip holds it (higher priority)" in late.reason
    assert "to come back it needs 1 free GPU device" in late.reason
    assert late.decision().displaced_by == ["default/vip"]


def test_a_model_with_no_room_at_all_is_displaced_to_zero(three_tiers: list[TierClass]) -> None:
    models = [fleet_model("vip", 6000, priority=1), fleet_model("late", 6000)]
    fleet = plan_fleet(models, three_tiers, NOW, snapshot=snapshot(nodes=nodes(1, cpu_nodes=0)))
    assert placed(fleet) == {"vip": "gpu", "late": None}
    late = fleet.plan_for("default/late")
    assert not late.feasible and late.change.value == "displaced" and late.replicas == 0
    assert "default/vip holds it (higher priority)" in late.reason


def test_the_solver_is_reported_and_big_problems_go_to_the_heuristic(
    three_tiers: list[TierClass],
) -> None:
    models = [fleet_model("a", 5000), fleet_model("b", 6000)]
    exact = plan_fleet(models, three_tiers, NOW, snapshot=ONE_GPU)
    assert exact.solver == "exact" and "HiGHS proved the optimum" in exact.solver_reason
    small_limit = PlannerSettings(exact_max_variables=3)
    big = plan_fleet(models, three_tiers, NOW, snapshot=ONE_GPU, settings=small_limit)
    assert big.solver == "heuristic" and "MILP variables > 3" in big.solver_reason
    assert all(p.solver == big.solver for p in big.plans)


def test_without_node_data_nothing_competes_and_each_model_gets_its_own_best(
    three_tiers: list[TierClass],
) -> None:
    models = [fleet_model("a", 5000), fleet_model("b", 40)]
    fleet = plan_fleet(models, three_tiers, NOW)
    for m, plan in zip(models, fleet.plans, strict=True):
        alone = decide(m, three_tiers, NOW)
        assert (plan.chosen and plan.chosen.key, plan.replicas) == (
            alone.chosen and alone.chosen.key,
            alone.replicas,
        )
    assert "no model competes" in fleet.solver_reason


def test_a_fleet_of_one_decides_like_the_per_model_planner(three_tiers: list[TierClass]) -> None:
    m = fleet_model("a", 6000)
    one = plan_fleet([m], three_tiers, NOW, snapshot=ONE_GPU).plans[0]
    alone = decide(m, three_tiers, NOW, snapshot=ONE_GPU)
    assert (one.tier_class, one.precision, one.replicas, one.per_hour) == (
        alone.tier_class, alone.precision, alone.replicas, alone.per_hour,
    )  # fmt: skip
    assert [r.candidate for r in one.rejected] == [r.candidate for r in alone.rejected]
