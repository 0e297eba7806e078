"""The closed vocabularies of the API: precisions, tier kinds, tasks, architectures."""

from __future__ import annotations

from enum import StrEnum


class Precision(StrEnum):
    """Numeric format of a model's weights (int8/int4 are weight-only quantization)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"
    INT4 = "int4"

    @property
    def bytes_per_param(self) -> float:
        """Bytes one weight takes, scales of quantized formats included (group size 128)."""
        return _BYTES_PER_PARAM[self]


# Used only to estimate before a profile is measured. int8 keeps one fp32
# scale per output channel (about 4 bytes per 1024 weights of a typical layer),
# int4 a bf16 scale and zero point per group of 128.
_BYTES_PER_PARAM = {
    Precision.FP32: 4.0,
    Precision.BF16: 2.0,
    Precision.FP16: 2.0,
    Precision.INT8: 1.0 + 4.0 / 1024,
    Precision.INT4: 0.5 + 4.0 / 128,
}


class TierKind(StrEnum):
    """Where a replica's weights live while it serves."""

    GPU = "gpu"
    CPU = "cpu"
    OFFLOAD = "offload"


class Task(StrEnum):
    TEXT_EMBEDDING = "text-embedding"
    TEXT_GENERATION = "text-generation"


class Architecture(StrEnum):
    BERT = "bert"
    LLAMA = "llama"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"
