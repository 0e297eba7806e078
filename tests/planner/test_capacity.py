"""Replicas must fit real nodes and devices one by one, not the sum over the tier."""

from __future__ import annotations

import math

from tierwise_operator.api import TierKind
from tierwise_operator.planner.capacity import ReplicaNeed, build_pools, replica_need
from tierwise_operator.planner.figures import Figures
from tierwise_operator.planner.snapshot import MetricsSnapshot

from .conftest import NOW, GiB, tier

GPU = tier("gpu", "gpu", memory="48Gi", devices=2)
CPU = tier("cpu", memory="64Gi", cpu=16)


def snap(nodes: list[dict], placements: list[dict] | None = None) -> MetricsSnapshot:
    return MetricsSnapshot.model_validate(
        {"takenAt": NOW.isoformat(), "nodes": nodes, "placements": placements or []}
    )


def gpu_need(gib: float) -> ReplicaNeed:
    return ReplicaNeed(int(gib * GiB), 2 * GiB, 2, gpu=True)


def test_a_replica_needs_one_device_with_room_not_the_tiers_total() -> None:
    s = snap([{"name": "g1", "tierClass": "gpu", "freeMemory": "100Gi",
               "devices": [{"free": "30Gi"}, {"free": "30Gi"}]}])  # fmt: skip
    pool = build_pools([GPU], s, movable={})["gpu"]
    assert pool.max_replicas(gpu_need(40)) == 0  # 60 GiB free in total, but 30 per device
    assert pool.max_replicas(gpu_need(20)) == 2
    assert pool.largest_slot(gpu=True) == 30 * GiB


def test_devices_held_by_other_pods_are_not_free() -> None:
    s = snap(
        [{"name": "g1", "tierClass": "gpu", "freeMemory": "100Gi",
          "devices": [{"free": "40Gi", "allocated": True}, {"free": "48Gi"}]}],
    )  # fmt: skip
    assert build_pools([GPU], s, movable={})["gpu"].max_replicas(gpu_need(10)) == 1


def test_a_models_own_replicas_count_as_free_when_it_is_re_planned() -> None:
    s = snap(
        [{"name": "g1", "tierClass": "gpu", "freeMemory": "100Gi",
          "devices": [{"free": "8Gi", "allocated": True}, {"free": "48Gi"}]},
         {"name": "c1", "tierClass": "cpu", "freeMemory": "2Gi", "freeCpu": 0}],
        [{"model": "ns/a", "node": "g1", "device": 0, "memory": "40Gi"},
         {"model": "ns/a", "node": "c1", "memory": "10Gi", "cpu": 8}],
    )  # fmt: skip
    mine = build_pools([GPU, CPU], s, movable={"ns/a": None})
    others = build_pools([GPU, CPU], s, movable={"ns/b": None})
    assert mine["gpu"].max_replicas(gpu_need(45)) == 2
    assert others["gpu"].max_replicas(gpu_need(45)) == 1
    cpu_need = ReplicaNeed(6 * GiB, 6 * GiB, 4, gpu=False)
    assert (mine["cpu"].max_replicas(cpu_need), others["cpu"].max_replicas(cpu_need)) == (2, 0)


def test_a_device_shared_with_another_model_stays_pinned_when_one_moves() -> None:
    s = snap(
        [{"name": "g1", "tierClass": "gpu", "freeMemory": "100Gi",
          "devices": [{"free": "8Gi", "allocated": True}, {"free": "48Gi"}]}],
        [{"model": "ns/a", "node": "g1", "device": 0, "memory": "20Gi"},
         {"model": "ns/b", "node": "g1", "device": 0, "memory": "20Gi"}],
    )  # fmt: skip
    assert build_pools([GPU], s, movable={"ns/a": None})["gpu"].max_replicas(gpu_need(45)) == 1
    both = build_pools([GPU], s, movable={"ns/a": None, "ns/b": None})["gpu"]
    assert both.max_replicas(gpu_need(45)) == 2


def test_a_copied_snapshot_answers_from_its_own_placements_and_metrics() -> None:
    s = snap([], [{"model": "ns/a", "node": "c1", "memory": "1Gi"}])
    assert [p.node for p in s.placements_of("ns/a")] == ["c1"]  # indices now built
    moved = s.model_copy(update={"placements": s.placements_of("ns/a")[:0]})
    assert moved.placements_of("ns/a") == []
    assert moved.holders("c1", None) == 0 and s.holders("c1", None) == 1
    seen = {"name": "a", "namespace": "ns", "requestRate": 2.0, "observedAt": NOW.isoformat()}
    with_traffic = s.model_copy(update={"models": [MetricsSnapshot.model_validate(
        {"takenAt": NOW.isoformat(), "models": [seen]}).models[0]]})  # fmt: skip
    assert s.metrics_for("ns/a") is None
    assert with_traffic.metrics_for("ns/a") is not None


def test_cpu_nodes_pack_by_memory_and_cores() -> None:
    s = snap([{"name": "c1", "tierClass": "cpu", "freeMemory": "64Gi", "freeCpu": 16},
              {"name": "c2", "tierClass": "cpu", "freeMemory": "10Gi", "freeCpu": 16}])  # fmt: skip
    pool = build_pools([CPU], s, movable={})["cpu"]
    assert pool.max_replicas(ReplicaNeed(4 * GiB, 4 * GiB, 4, gpu=False)) == 4 + 2
    assert pool.max_replicas(ReplicaNeed(1 * GiB, 1 * GiB, 8, gpu=False)) == 2 + 2
    assert pool.holds(ReplicaNeed(4 * GiB, 4 * GiB, 4, gpu=False), 6)
    assert not pool.holds(ReplicaNeed(4 * GiB, 4 * GiB, 4, gpu=False), 7)


def test_without_node_data_capacity_is_elastic_but_a_replica_must_fit_one_node() -> None:
    pool = build_pools([CPU], None, movable={})["cpu"]
    assert pool.max_replicas(ReplicaNeed(60 * GiB, 60 * GiB, 4, gpu=False)) == math.inf
    assert pool.max_replicas(ReplicaNeed(65 * GiB, 65 * GiB, 4, gpu=False)) == 0
    assert pool.max_replicas(ReplicaNeed(1 * GiB, 1 * GiB, 17, gpu=False)) == 0


def test_a_tier_missing_from_the_snapshot_has_no_room() -> None:
    pool = build_pools([CPU, GPU], snap([]), movable={})["gpu"]
    assert pool.max_replicas(gpu_need(1)) == 0


def test_the_kv_cache_is_reserved_for_every_sequence_of_the_batch() -> None:
    f = Figures(GiB, 2 * GiB, 1024, 0.0, None, 4.0)
    need = replica_need(f, TierKind.GPU, context=2048, batch=8)
    assert need.tier_bytes == 2 * GiB + 1024 * 2048 * 8
    assert need.host_bytes < need.tier_bytes and need.gpu


def test_a_nodes_room_is_the_least_any_of_its_resources_leaves() -> None:
    s = snap([{"name": "g1", "tierClass": "gpu", "freeMemory": "5Gi", "freeCpu": 7,
               "devices": [{"free": "30Gi"}, {"free": "10Gi"}, {"free": "30Gi"}]}])  # fmt: skip
    nodes = build_pools([GPU], s, movable={})["gpu"].nodes
    assert nodes is not None
    node = nodes[0]
    for need in (gpu_need(20), gpu_need(5), ReplicaNeed(GiB, 1 * GiB, 3, gpu=True)):
        assert node.fits(need) == min(node.by_resource(need).values())
