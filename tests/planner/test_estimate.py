"""Estimates before a profile: bytes per parameter, overheads, roofline latency, priors."""

from __future__ import annotations

import pytest

from tierwise_operator.api import Precision, Task, TierKind
from tierwise_operator.planner import estimate
from tierwise_operator.planner.latency import LatencyCurve


def test_weights_shrink_with_precision() -> None:
    sizes = [estimate.weight_bytes(10**9, p) for p in Precision]
    assert sizes == sorted(sizes, reverse=True)
    assert estimate.weight_bytes(10**9, Precision.FP16) == 2 * 10**9


def test_offload_keeps_only_part_of_the_weights_resident() -> None:
    weights = 10 * 2**30
    cpu = estimate.resident_bytes(weights, TierKind.CPU)
    offload = estimate.resident_bytes(weights, TierKind.OFFLOAD)
    gpu = estimate.resident_bytes(weights, TierKind.GPU)
    assert offload < cpu < gpu
    assert cpu - weights == estimate.CPU_RUNTIME_OVERHEAD


def test_only_decoders_get_a_kv_cache() -> None:
    assert estimate.kv_bytes_per_token(Task.TEXT_EMBEDDING, 10**9) == 0
    assert estimate.kv_bytes_per_token(Task.TEXT_GENERATION, 10**9) > 0


def test_lower_precisions_are_assumed_lossier() -> None:
    for task in Task:
        deltas = [estimate.accuracy_prior(task, p) for p in Precision]
        assert deltas[0] == 0.0
        assert estimate.accuracy_prior(task, Precision.INT4) == max(deltas)


@pytest.mark.parametrize("task", list(Task))
def test_roofline_ranks_gpu_over_cpu_and_offload_no_faster_than_cpu(task: Task) -> None:
    def curve(kind: TierKind) -> LatencyCurve:
        return estimate.roofline_curve(
            task, 10**9, Precision.INT8, kind, cpu_cores=4, read_bandwidth=3e9
        )

    rates = [curve(kind).capacity(None)[0] for kind in TierKind]
    assert rates[0] > rates[1] >= rates[2]
    if task is Task.TEXT_GENERATION:  # every decoding step streams the weights from disk
        assert curve(TierKind.CPU).fastest_p99_s < curve(TierKind.OFFLOAD).fastest_p99_s


def test_generation_is_bound_by_reading_weights_so_int4_decodes_faster() -> None:
    def idle_p99(p: Precision) -> float:
        c = estimate.roofline_curve(
            Task.TEXT_GENERATION, 10**9, p, TierKind.CPU, cpu_cores=4, read_bandwidth=None
        )
        return c.fastest_p99_s

    assert idle_p99(Precision.INT4) < idle_p99(Precision.INT8) < idle_p99(Precision.FP32)
    speed = estimate.relative_speed(
        Task.TEXT_GENERATION, TierKind.CPU, Precision.INT4, Precision.FP32
    )
    assert speed > 1
