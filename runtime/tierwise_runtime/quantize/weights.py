"""Counts the bytes a model's weights really take (shared storage counted once)."""

from __future__ import annotations

from torch import nn


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and persistent buffer, each storage counted once (tied weights)."""
    seen: set[tuple[str, int, int]] = set()
    total = 0
    for tensor in model.state_dict(keep_vars=True).values():
        nbytes = tensor.numel() * tensor.element_size()
        # Keyed by address, not storage: memory-mapped tensors share one file-sized storage.
        key = (tensor.device.type, tensor.data_ptr(), nbytes)
        if tensor.device.type != "meta" and key in seen:
            continue
        seen.add(key)
        total += nbytes
    return total
