"""Figures for candidates nobody has measured yet: rough, documented priors, marked estimated.

Every number here is a prior to be replaced by a profile; they err on the slow and
lossy side so an estimated plan rarely promises more than a measured one delivers.
"""

from __future__ import annotations

from ..api import LatencyPoint, Precision, Task, TierKind
from .latency import LatencyCurve

MiB = 2**20
GiB = 2**30

#: Anonymous memory of a serving process besides weights: torch alone is ~224 MB of RSS.
CPU_RUNTIME_OVERHEAD = 384 * MiB
#: Device memory besides weights on a GPU: CUDA context, allocator slack, activations.
GPU_DEVICE_OVERHEAD = 1 * GiB
#: Host memory a GPU replica requests (process, tokenizer, pinned staging buffers).
GPU_HOST_MEMORY = 2 * GiB
#: Offload replicas stream weights from a memory map and keep about this much resident.
OFFLOAD_RESIDENT_FRACTION = 0.1
#: Cores a cpu/offload replica requests when no profile says how many it was measured with.
DEFAULT_CPU_CORES = 4.0
#: Cores a GPU replica requests (feeding the device; not charged, the device is).
GPU_CPU_CORES = 2.0
#: KV-cache bytes per token of context, per parameter (fp16 cache, grouped-query attention).
KV_BYTES_PER_TOKEN_PER_PARAM = 1e-4

#: Quality lost against fp32, as the accuracy budget measures it, by task and precision.
ACCURACY_PRIOR: dict[Task, dict[Precision, float]] = {
    Task.TEXT_EMBEDDING: {
        Precision.FP32: 0.0,
        Precision.FP16: 0.0002,
        Precision.BF16: 0.001,
        Precision.INT8: 0.005,
        Precision.INT4: 0.03,
    },
    Task.TEXT_GENERATION: {
        Precision.FP32: 0.0,
        Precision.FP16: 0.001,
        Precision.BF16: 0.003,
        Precision.INT8: 0.01,
        Precision.INT4: 0.05,
    },
}

# Roofline of one replica by tier kind: memory bandwidth (bytes/s) and compute (FLOP/s)
# by precision. GPU: a data-centre part at ~50% of its datasheet; CPU: per core, AVX-512.
_GPU_BANDWIDTH = 1.5e12
_GPU_FLOPS = {
    Precision.FP32: 3e13,
    Precision.BF16: 1.5e14,
    Precision.FP16: 1.5e14,
    Precision.INT8: 1.2e14,  # weight-only: dequantize, then fp16 math
    Precision.INT4: 1.0e14,
}
_CPU_BANDWIDTH_PER_CORE = 6e9
_CPU_FLOPS_PER_CORE = {
    Precision.FP32: 5e10,
    Precision.BF16: 4e10,
    Precision.FP16: 2.5e10,  # few CPUs compute fp16 natively
    Precision.INT8: 4e10,
    Precision.INT4: 3e10,
}
#: Offload tiers without a stated read bandwidth: a typical NVMe disk.
DEFAULT_OFFLOAD_BANDWIDTH = 2e9
#: Work per request the estimate assumes: tokens embedded, prompt and generated tokens.
EMBED_TOKENS = 128
PROMPT_TOKENS = 512
OUTPUT_TOKENS = 128
#: Fixed cost of one forward pass (framework, kernel launches), seconds.
_PASS_OVERHEAD_S = 0.002
#: p99 of a batch over its median, for estimated points.
_TAIL = 1.25
BATCHES = (1, 8, 32)


def weight_bytes(parameters: int, precision: Precision) -> int:
    return int(parameters * precision.bytes_per_param)


def resident_bytes(weights: int, kind: TierKind) -> int:
    """Memory a replica holds in its tier besides the KV cache."""
    if kind is TierKind.GPU:
        return weights + GPU_DEVICE_OVERHEAD
    if kind is TierKind.OFFLOAD:
        return int(weights * OFFLOAD_RESIDENT_FRACTION) + CPU_RUNTIME_OVERHEAD
    return weights + CPU_RUNTIME_OVERHEAD


def kv_bytes_per_token(task: Task, parameters: int) -> int:
    if task is not Task.TEXT_GENERATION:
        return 0
    return int(parameters * KV_BYTES_PER_TOKEN_PER_PARAM)


def accuracy_prior(task: Task, precision: Precision) -> float:
    return ACCURACY_PRIOR[task][precision]


def roofline_curve(
    task: Task,
    parameters: int,
    precision: Precision,
    kind: TierKind,
    *,
    cpu_cores: float,
    read_bandwidth: float | None,
) -> LatencyCurve:
    """Latency points at batches 1, 8 and 32 from the roofline of the tier kind."""
    bandwidth, flops = _roofline(precision, kind, cpu_cores, read_bandwidth)
    weights = weight_bytes(parameters, precision)
    points = []
    for batch in BATCHES:
        seconds = _batch_seconds(task, parameters, weights, batch, bandwidth=bandwidth, flops=flops)
        points.append(
            LatencyPoint(
                batch=batch,
                p50_ms=seconds * 1000,
                p99_ms=seconds * 1000 * _TAIL,
                throughput=batch / seconds,
            )
        )
    curve = LatencyCurve.from_points(points)
    assert curve is not None  # every point has a positive throughput
    return curve


def _roofline(
    precision: Precision, kind: TierKind, cpu_cores: float, read_bandwidth: float | None
) -> tuple[float, float]:
    if kind is TierKind.GPU:
        return _GPU_BANDWIDTH, _GPU_FLOPS[precision]
    flops = _CPU_FLOPS_PER_CORE[precision] * cpu_cores
    if kind is TierKind.OFFLOAD:
        # Worst case: every pass streams the weights from disk (nothing left in page cache).
        return read_bandwidth or DEFAULT_OFFLOAD_BANDWIDTH, flops
    return _CPU_BANDWIDTH_PER_CORE * cpu_cores, flops


def _batch_seconds(
    task: Task, parameters: int, weights: int, batch: int, *, bandwidth: float, flops: float
) -> float:
    def one_pass(tokens_per_sequence: int) -> float:
        compute = 2.0 * parameters * tokens_per_sequence * batch / flops
        return max(weights / bandwidth, compute) + _PASS_OVERHEAD_S

    if task is Task.TEXT_EMBEDDING:
        return one_pass(EMBED_TOKENS)
    return one_pass(PROMPT_TOKENS) + OUTPUT_TOKENS * one_pass(1)


def relative_speed(task: Task, kind: TierKind, precision: Precision, measured: Precision) -> float:
    """How much faster `precision` runs than a `measured` one on the same tier kind."""
    return _speed(task, kind, precision) / _speed(task, kind, measured)


def _speed(task: Task, kind: TierKind, precision: Precision) -> float:
    bound_by_memory = task is Task.TEXT_GENERATION or kind is TierKind.OFFLOAD
    if bound_by_memory:
        # Decoding and streaming read every weight per step: speed follows bytes.
        return 1.0 / precision.bytes_per_param * _DEQUANT_EFFICIENCY[precision]
    table = _GPU_FLOPS if kind is TierKind.GPU else _CPU_FLOPS_PER_CORE
    return table[precision]


_DEQUANT_EFFICIENCY = {
    Precision.FP32: 1.0,
    Precision.BF16: 1.0,
    Precision.FP16: 1.0,
    Precision.INT8: 0.8,
    Precision.INT4: 0.6,
}
