"""Attaches an AdapterManager to a loaded engine (after load and quantization)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tierwise_operator.api import TierKind

from ..engine import Engine
from ..errors import LoadError
from .manager import AdapterManager, AdapterSpec

ADAPTER_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
"""What adapters are held and computed in, whatever the base's precision."""


def attach_adapters(
    engine: Engine,
    specs: Sequence[AdapterSpec] = (),
    *,
    capacity: int = 4,
    dtype: torch.dtype = torch.float32,
) -> AdapterManager:
    """Gives `engine` LoRA adapters: `specs` are checked now and loaded on first use, at most
    `capacity` resident. Bad adapters are logged and listed as failed; the base serves."""
    model = getattr(engine, "model", None)
    if model is None or not hasattr(engine, "adapters"):
        raise LoadError(f"{type(engine).__name__} does not take adapters")
    if engine.info.tier is TierKind.OFFLOAD:
        raise LoadError("adapters are not supported on the offload tier")
    manager = AdapterManager(
        model, str(engine.info.architecture), engine.info.model_name, capacity, dtype
    )
    manager.configure(specs)
    engine.adapters = manager
    return manager
