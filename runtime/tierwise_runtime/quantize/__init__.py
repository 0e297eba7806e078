"""Precisions as configs applied by one entry point, `quantize_(model, config)`, as torchao does."""

from __future__ import annotations

from .api import quantize_, register
from .configs import (
    CastConfig,
    Int4WeightOnlyConfig,
    Int8WeightOnlyConfig,
    QuantConfig,
    compute_dtype,
    config_for,
    parse_precision,
)
from .linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from .weights import weight_bytes

__all__ = [
    "CastConfig",
    "Int4WeightOnlyConfig",
    "Int4WeightOnlyLinear",
    "Int8WeightOnlyConfig",
    "Int8WeightOnlyLinear",
    "QuantConfig",
    "compute_dtype",
    "config_for",
    "parse_precision",
    "quantize_",
    "register",
    "weight_bytes",
]
