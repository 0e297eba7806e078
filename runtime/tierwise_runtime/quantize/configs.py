"""One small config per precision, and how a Precision and a group size become one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tierwise_operator.api import Precision

from ..errors import PrecisionError

INT4_GROUP_SIZES = (32, 64, 128, 256)
"""Group sizes the int4 kernels (tinygemm on CUDA, torch's CPU int4pack) accept."""
DEFAULT_GROUP_SIZE = 128


@dataclass(frozen=True)
class CastConfig:
    """Every floating-point weight in `dtype` (fp32, bf16, fp16)."""

    dtype: torch.dtype


@dataclass(frozen=True)
class Int8WeightOnlyConfig:
    """Linear weights as int8 with one scale per output channel; activations in compute_dtype."""

    compute_dtype: torch.dtype = torch.bfloat16


@dataclass(frozen=True)
class Int4WeightOnlyConfig:
    """Linear weights as 4-bit integers with a scale and zero point per group of inputs."""

    group_size: int = DEFAULT_GROUP_SIZE
    compute_dtype: torch.dtype = torch.bfloat16


QuantConfig = CastConfig | Int8WeightOnlyConfig | Int4WeightOnlyConfig

_CASTS = {
    Precision.FP32: torch.float32,
    Precision.BF16: torch.bfloat16,
    Precision.FP16: torch.float16,
}


def parse_precision(value: Precision | str) -> Precision:
    try:
        return Precision(value)
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise PrecisionError(f"unknown precision {value!r}: choose one of {choices}") from None


def config_for(precision: Precision | str, group_size: int | None = None) -> QuantConfig:
    """The config of a precision. Quantized precisions compute in bf16: torch's int8/int4 CPU
    kernels are 40-100x slower with float32 activations, and tinygemm takes bf16 only."""
    p = parse_precision(precision)
    if group_size is not None and p is not Precision.INT4:
        raise PrecisionError(f"group size applies to int4 only, not {p.value}")
    if p in _CASTS:
        return CastConfig(_CASTS[p])
    if p is Precision.INT8:
        return Int8WeightOnlyConfig()
    size = DEFAULT_GROUP_SIZE if group_size is None else group_size
    if size not in INT4_GROUP_SIZES:
        raise PrecisionError(
            f"int4 group size {size} is not supported: choose one of "
            f"{', '.join(map(str, INT4_GROUP_SIZES))}"
        )
    return Int4WeightOnlyConfig(group_size=size)


def compute_dtype(config: QuantConfig) -> torch.dtype:
    """The dtype activations (and the KV cache) take under this config."""
    return config.dtype if isinstance(config, CastConfig) else config.compute_dtype
