"""Sizing one candidate: a batch cap within the replica bounds, exact memory fits, and a
rejection that names the resource that really binds."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.api import InferenceModel
from tierwise_operator.planner import MetricsSnapshot, Plan, decide
from tierwise_operator.planner.capacity import ReplicaNeed, build_pools

from .conftest import NOW, GiB, entry, model, point, profile, snapshot, tier

#: 7 GiB of KV cache per sequence at the default 2048-token context.
KV_7GIB = 7 * GiB // 2048


def why(plan: Plan, candidate: str) -> str:
    return next(r.why for r in plan.rejected if r.candidate == candidate)


def decoder(replicas: tuple[int, int]) -> InferenceModel:
    """Batch 1 serves 1 req/s in 9 GiB; batch 8 serves 3 req/s in 58 GiB. At 15 req/s the
    cheapest cap (3: 10 replicas) breaks `max 6`; only caps 7 and 8 fit within it."""
    prof = profile(
        entry("fp16", "cpu", 1.5, 0.0, [point(1, 1000, 1), point(8, 3000, 3)],
              peak_gib=2.0, kv_per_token=KV_7GIB),
        task="text-generation",
    )  # fmt: skip
    return model(task="text-generation", budget="5%", slo=None, rps=15, precisions=["fp16"],
                 replicas=replicas, prof=prof)  # fmt: skip


CPU = tier("cpu", memory="64Gi", price="1.00", cpu=16)


def test_the_batch_cap_is_chosen_among_those_that_keep_the_replicas_within_max() -> None:
    plan = decide(decoder((1, 6)), [CPU], NOW)
    assert plan.feasible, plan.reason
    assert (plan.replicas, plan.max_batch) == (5, 8)


def test_without_the_bound_the_cheapest_cap_still_wins() -> None:
    plan = decide(decoder((1, 40)), [CPU], NOW)
    assert (plan.replicas, plan.max_batch) == (10, 3)


def test_when_no_cap_fits_within_max_the_fewest_replicas_are_reported() -> None:
    plan = decide(decoder((1, 4)), [CPU], NOW)
    assert not plan.feasible
    assert why(plan, "fp16/cpu").startswith("needs 5 replicas for 15 req/s (3 req/s each)")


def embedder_on_gpu(peak_gib: float, threads: int = 4) -> InferenceModel:
    prof = profile(
        entry("fp16", "gpu", peak_gib - 1, 0.0, [point(1, 5, 100)], peak_gib=peak_gib),
        entry("fp16", "cpu", 1.0, 0.0, [point(1, 20, 50)]),
        threads=threads,
    )
    return model(precisions=["fp16"], prof=prof)


GPU16 = tier("gpu", "gpu", memory="16Gi", price="8.00", cpu=4)


def test_a_replica_whose_memory_equals_the_device_memory_fits() -> None:
    plan = decide(embedder_on_gpu(16.0), [GPU16], NOW)
    assert plan.feasible, plan.reason
    assert plan.memory_request_bytes == 16 * GiB


def test_a_replica_a_mebibyte_over_the_device_is_rejected_for_memory_not_cores() -> None:
    plan = decide(embedder_on_gpu(16.0 + 1 / 1024), [GPU16], NOW)
    assert why(plan, "fp16/gpu") == "needs 16.001 GiB per replica > 16 GiB per device"


def test_a_replica_needing_more_cores_than_a_node_has_is_rejected_for_cores() -> None:
    small = tier("cpu", memory="64Gi", cpu=4)
    plan = decide(embedder_on_gpu(2.0, threads=8), [small], NOW)
    assert why(plan, "fp16/cpu") == "needs 8 cores per replica > 4 per node"


def test_an_exact_fit_on_a_free_device_and_node_counts() -> None:
    gpu = tier("gpu", "gpu", memory="16Gi", devices=1)
    s = snapshot(nodes=[{"name": "g", "tierClass": "gpu", "freeMemory": "2Gi", "freeCpu": 2,
                         "devices": [{"free": "16Gi"}]}])  # fmt: skip
    pool = build_pools([gpu], s, movable={})["gpu"]
    assert pool.max_replicas(ReplicaNeed(16 * GiB, 2 * GiB, 2, gpu=True)) == 1


def gpu_nodes(
    devices: list[dict[str, Any]], free_memory: str = "64Gi", free_cpu: int = 32
) -> MetricsSnapshot:
    return snapshot(nodes=[{"name": "g", "tierClass": "gpu", "freeMemory": free_memory,
                            "freeCpu": free_cpu, "devices": devices}])  # fmt: skip


@pytest.mark.parametrize(
    ("nodes", "reason"),
    [
        (gpu_nodes([{"free": "16Gi", "allocated": True}] * 2),
         "needs 1 replica on a free device; every device of gpu is already allocated"),
        (gpu_nodes([{"free": "10Gi"}]),
         "needs 14 GiB of device memory per replica; the largest free device of gpu has 10 GiB"),
        (gpu_nodes([{"free": "16Gi"}], free_memory="1Gi"),
         "needs 2 GiB of host memory per replica next to its device; "
         "no gpu node has that much free"),
        (gpu_nodes([{"free": "16Gi"}], free_cpu=1),
         "needs 2 cores per replica; no gpu node has that many free"),
        (snapshot(nodes=[]), "gpu has no nodes in the metrics snapshot"),
    ],
)  # fmt: skip
def test_no_room_on_real_nodes_names_the_resource_that_binds(
    nodes: MetricsSnapshot, reason: str
) -> None:
    plan = decide(embedder_on_gpu(14.0), [GPU16], NOW, snapshot=nodes)
    assert why(plan, "fp16/gpu") == reason


def test_no_room_on_cpu_nodes_says_whether_memory_or_cores_ran_out() -> None:
    m = model(
        rps=40,
        precisions=["fp16"],
        prof=profile(entry("fp16", "cpu", 1.0, 0.0, [point(1, 20, 10)], peak_gib=1.5)),
    )
    cores = snapshot(nodes=[{"name": "c", "tierClass": "cpu", "freeMemory": "60Gi", "freeCpu": 8}])
    memory = snapshot(nodes=[{"name": "c", "tierClass": "cpu", "freeMemory": "3Gi", "freeCpu": 16}])
    both = snapshot(
        nodes=[
            {"name": "c1", "tierClass": "cpu", "freeMemory": "60Gi", "freeCpu": 0},
            {"name": "c2", "tierClass": "cpu", "freeMemory": "0", "freeCpu": 16},
        ]
    )
    assert why(decide(m, [CPU], NOW, snapshot=cores), "fp16/cpu") == (
        "needs 4 replicas of 4 cores; only 2 fit the free cores of cpu"
    )
    assert why(decide(m, [CPU], NOW, snapshot=memory), "fp16/cpu") == (
        "needs 4 replicas of 1.5 GiB; only 2 fit the free memory of cpu"
    )
    assert why(decide(m, [CPU], NOW, snapshot=both), "fp16/cpu") == (
        "needs 4 replicas of 1.5 GiB and 4 cores; none fit cpu: "
        "no node has enough memory and cores free together"
    )


def test_too_few_free_devices_says_how_many_are_not_allocated() -> None:
    two = model(rps=150, precisions=["fp16"],
                prof=profile(entry("fp16", "gpu", 4.0, 0.0, [point(1, 5, 100)])))  # fmt: skip
    s = gpu_nodes([{"free": "16Gi"}, {"free": "16Gi", "allocated": True}])
    assert why(decide(two, [GPU16], NOW, snapshot=s), "fp16/gpu") == (
        "needs 2 replicas on free devices; gpu has 1 not allocated yet"
    )
