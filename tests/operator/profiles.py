"""Measured-looking profiles for the samples, for tests that need the planner to decide."""

from __future__ import annotations

from tierwise_operator.api import (
    AccuracyMeasure,
    Architecture,
    CandidateProfile,
    LatencyPoint,
    ModelProfile,
    Precision,
    ProfiledModel,
    Task,
    TierKind,
)

MIB = 2**20
# all-MiniLM-L6-v2 as measured on a CPU node and an H100 (ms per batch of 1 / 32).
_CPU = {Precision.FP32: (4.0, 84.0), Precision.BF16: (3.0, 26.0), Precision.FP16: (12.0, 330.0),
        Precision.INT8: (3.5, 63.0), Precision.INT4: (3.2, 54.0)}  # fmt: skip
_GPU = {p: (1.0, 2.0) for p in Precision}
_WEIGHTS = {Precision.FP32: 90, Precision.BF16: 45, Precision.FP16: 45, Precision.INT8: 24,
            Precision.INT4: 14}  # fmt: skip
_DELTA = {Precision.FP32: 0.0, Precision.BF16: 0.0002, Precision.FP16: 0.0001,
          Precision.INT8: 0.0004, Precision.INT4: 0.029}  # fmt: skip


def _points(ms1: float, ms32: float, offload: bool = False) -> list[LatencyPoint]:
    factor = 1.3 if offload else 1.0
    return [
        LatencyPoint(batch=1, p50_ms=ms1 * factor * 0.9, p99_ms=ms1 * factor,
                     throughput=1000 / (ms1 * factor)),
        LatencyPoint(batch=32, p50_ms=ms32 * factor * 0.9, p99_ms=ms32 * factor,
                     throughput=32000 / (ms32 * factor)),
    ]  # fmt: skip


def embedder_profile() -> ModelProfile:
    candidates = []
    for precision in Precision:
        for tier in TierKind:
            table = _GPU if tier is TierKind.GPU else _CPU
            candidates.append(
                CandidateProfile(
                    precision=precision, tier=tier, weight_bytes=_WEIGHTS[precision] * MIB,
                    load_seconds=1.0, peak_memory_bytes=(_WEIGHTS[precision] + 300) * MIB,
                    latency=_points(*table[precision], offload=tier is TierKind.OFFLOAD),
                    accuracy=AccuracyMeasure(delta=_DELTA[precision]),
                )
            )  # fmt: skip
    return ModelProfile(
        model=ProfiledModel(uri="builtin://all-minilm-l6-v2", task=Task.TEXT_EMBEDDING,
                            architecture=Architecture.BERT, parameters=22_713_216, max_tokens=256),
        candidates=candidates,
    )  # fmt: skip
