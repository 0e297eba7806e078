"""The fleet round as an arbiter: priorities hold on the cluster, the displaced say why, a model
short of room runs fewer replicas before it runs none, and a round fed its own answer holds."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.planner import ChangeKind, MetricsSnapshot, decide
from tierwise_operator.planner.fleet import FleetPlan, plan_fleet

from .conftest import EMBEDDER, NOW, later, model, running

SOLVERS = ["exact", "heuristic"]


def gpu_node(free: int, held_by: int = 0) -> dict[str, Any]:
    """One 8-device node: `free` devices free, `held_by` held by tierwise replicas, the rest
    by pods tierwise does not plan."""
    foreign = 8 - free - held_by
    devices = [{"free": "1Gi", "allocated": True}] * held_by + [{"free": "80Gi"}] * free
    devices += [{"free": "1Gi", "allocated": True}] * foreign
    return {"name": "g1", "tierClass": "gpu", "freeMemory": "1Ti", "freeCpu": 180,
            "devices": devices}  # fmt: skip


def cpu_nodes(count: int, memory: str = "64Gi") -> list[dict[str, Any]]:
    return [
        {"name": f"c{i}", "tierClass": "cpu", "freeMemory": memory, "freeCpu": 16}
        for i in range(count)
    ]


def embedder(name: str, rps: float, priority: int, **kw: Any) -> InferenceModel:
    args: dict[str, Any] = {"replicas": (1, 64), "tiers": ["gpu", "cpu"], **EMBEDDER, **kw}
    return model(name, rps=rps, priority=priority, **args)


def serving(m: InferenceModel, tiers: list[TierClass], snap: MetricsSnapshot) -> InferenceModel:
    """`m` as it runs after planning alone on `snap`."""
    plan = decide(m, tiers, NOW, snapshot=snap)
    assert plan.feasible
    return running(m, plan)


def held(m: InferenceModel, node: str, device: int | None, memory: str) -> dict[str, Any]:
    """A placement of `m`'s running replica."""
    status = m.status
    assert status is not None and status.precision is not None
    candidate = f"{status.precision}/{status.tier_class}"
    out: dict[str, Any] = {"model": f"default/{m.name}", "node": node, "memory": memory,
                           "candidate": candidate}  # fmt: skip
    if device is not None:
        out["device"] = device
    return out


def with_placements(nodes: list[dict[str, Any]], *placements: dict[str, Any]) -> MetricsSnapshot:
    return MetricsSnapshot.model_validate(
        {"takenAt": NOW.isoformat(), "nodes": nodes, "placements": list(placements)}
    )


def by_name(fleet: FleetPlan) -> dict[str, Any]:
    return {p.model.split("/")[1]: p for p in fleet.plans}


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_higher_priority_takes_the_only_gpu_and_the_lower_moves_to_its_cpu_candidate(
    solver: str, three_tiers: list[TierClass]
) -> None:
    alone = with_placements([gpu_node(free=1), *cpu_nodes(8)])
    low = serving(embedder("low", 5000, priority=10), three_tiers, alone)
    assert low.status is not None and low.status.tier_class == "gpu"
    # The low model's replica now holds the only free device; the VIP needs a GPU for its SLO.
    snap = with_placements([gpu_node(free=0, held_by=1), *cpu_nodes(8)], held(low, "g1", 0, "80Gi"))
    vip = embedder("vip", 500, priority=100, slo="10ms")
    fleet = plan_fleet([low, vip], three_tiers, NOW, snapshot=snap, solver=solver)
    plans = by_name(fleet)
    assert plans["vip"].tier_class == "gpu" and plans["vip"].feasible
    assert plans["low"].tier_class == "cpu" and plans["low"].feasible
    assert plans["low"].change is ChangeKind.RE_TIER
    displaced = plans["low"].displacement
    assert displaced is not None and displaced.by == ("default/vip",) and displaced.by_priority
    assert "default/vip holds it (higher priority)" in plans["low"].reason
    assert plans["vip"].preempted == ("default/low",)
    assert "takes the room of default/low" in plans["vip"].reason


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_lower_priority_with_nowhere_else_to_go_gives_the_device_back(
    solver: str, three_tiers: list[TierClass]
) -> None:
    alone = with_placements([gpu_node(free=1)])
    low = serving(embedder("low", 5000, priority=10, tiers=["gpu"]), three_tiers, alone)
    snap = with_placements([gpu_node(free=0, held_by=1)], held(low, "g1", 0, "80Gi"))
    vip = embedder("vip", 500, priority=100, slo="10ms", tiers=["gpu"])
    plans = by_name(plan_fleet([low, vip], three_tiers, NOW, snapshot=snap, solver=solver))
    assert plans["vip"].tier_class == "gpu" and plans["vip"].replicas == 1
    # Never both on one exclusive device: the displaced model scales to zero.
    low_plan = plans["low"]
    assert low_plan.change is ChangeKind.DISPLACED and low_plan.replicas == 0
    assert not low_plan.feasible and low_plan.tier_class == "gpu"
    assert low_plan.status_fields()["replicas"] == 0
    assert "to come back it needs 1 free GPU device" in low_plan.reason


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_model_short_of_room_runs_fewer_replicas_before_it_runs_none(
    solver: str, three_tiers: list[TierClass]
) -> None:
    cpu_only = embedder("big", 600, priority=0, tiers=["cpu"], precisions=["int8"])
    roomy = plan_fleet([cpu_only], three_tiers, NOW, snapshot=with_placements(cpu_nodes(8)))
    needed = roomy.plans[0].replicas
    assert needed >= 3
    # Cores for only two replicas anywhere: two run, and the plan says how many it lacks.
    tight = [{"name": "c0", "tierClass": "cpu", "freeMemory": "64Gi", "freeCpu": 8}]
    fleet = plan_fleet([cpu_only], three_tiers, NOW, snapshot=with_placements(tight), solver=solver)
    plan = fleet.plans[0]
    per_replica = roomy.plans[0].cpu_request
    assert per_replica is not None
    assert plan.replicas == int(8 // per_replica) < needed and plan.replicas >= 1
    assert plan.displacement is not None
    assert plan.displacement.replicas_short == needed - plan.replicas
    assert f"runs {needed - plan.replicas} replica(s) short" in plan.reason


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_round_fed_its_own_answer_moves_nothing(
    solver: str, three_tiers: list[TierClass]
) -> None:
    models = [
        embedder("a", 5000, priority=0),
        embedder("b", 6000, priority=0),
        embedder("c", 5500, priority=5),
    ]
    nodes = [gpu_node(free=2), *cpu_nodes(8)]
    first = plan_fleet(models, three_tiers, NOW, snapshot=with_placements(nodes), solver=solver)
    after = [running(m, first.plan_for(f"default/{m.name}")) for m in models]
    gpu_holders = [m for m in after if m.status is not None and m.status.tier_class == "gpu"]
    assert len(gpu_holders) == 2
    placements = [held(m, "g1", i, "80Gi") for i, m in enumerate(gpu_holders)]
    snap = with_placements([gpu_node(free=0, held_by=2), *cpu_nodes(8)], *placements)
    second = plan_fleet(after, three_tiers, later(60), snapshot=snap, solver=solver)
    assert [p.change for p in second.plans] == [ChangeKind.KEPT] * 3
    assert by_name(second).keys() == by_name(first).keys()
    assert {k: p.tier_class for k, p in by_name(second).items()} == {
        k: p.tier_class for k, p in by_name(first).items()
    }


def test_replicas_being_replaced_keep_their_room_from_other_models(
    three_tiers: list[TierClass],
) -> None:
    alone = with_placements([gpu_node(free=1)])
    mover = serving(embedder("mover", 5000, priority=0, tiers=["gpu"]), three_tiers, alone)
    old = held(mover, "g1", 0, "80Gi")
    # The device still runs a replica of the candidate the model is moving away from.
    old["candidate"] = "fp32/gpu"
    snap = with_placements([gpu_node(free=0, held_by=1)], old)
    rival = embedder("rival", 500, priority=100, slo="10ms", tiers=["gpu"])
    plans = by_name(plan_fleet([mover, rival], three_tiers, NOW, snapshot=snap))
    assert plans["rival"].replicas == 0 and not plans["rival"].feasible
    assert plans["rival"].tier_class is None


def test_with_ample_room_the_fleet_costs_the_sum_of_independent_choices(
    three_tiers: list[TierClass],
) -> None:
    models = [embedder(n, rps, priority=p) for n, rps, p in
              [("a", 50, 0), ("b", 500, 3), ("c", 5000, 7)]]  # fmt: skip
    nodes = [gpu_node(free=8), *cpu_nodes(16)]
    fleet = plan_fleet(models, three_tiers, NOW, snapshot=with_placements(nodes))
    alone = [decide(m, three_tiers, NOW, snapshot=with_placements(nodes)) for m in models]
    assert fleet.per_hour == sum(p.per_hour or 0 for p in alone)
    assert all(p.displacement is None and not p.preempted for p in fleet.plans)
