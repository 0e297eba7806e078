"""A preallocated key/value cache for a batch of sequences decoded together."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer: [layers, B, kv_heads, max_len, head_dim] each."""

    def __init__(
        self,
        layers: int,
        batch: int,
        *,
        kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        shape = (layers, batch, kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @classmethod
    def of(cls, k: torch.Tensor, v: torch.Tensor) -> KVCache:
        """A cache holding these tensors ([layers, B, kv_heads, max_len, head_dim] each)."""
        cache = cls.__new__(cls)
        cache.k, cache.v = k, v
        return cache

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def update(
        self, layer: int, start: int | torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, kv_heads, S, hd] at slots [start, start + S); return every filled slot.
        With `start` a tensor [B] (one new token per row, S = 1), row b writes its column
        start[b] of the first B rows, and the first `width` columns of those rows come back:
        rows of a slot cache each keep their own length (`width` is set before the step)."""
        if isinstance(start, torch.Tensor):
            rows = torch.arange(k.shape[0], device=k.device)
            self.k[layer, rows, :, start] = k[:, :, 0]
            self.v[layer, rows, :, start] = v[:, :, 0]
            b = k.shape[0]
            return self.k[layer, :b, :, : self.width], self.v[layer, :b, :, : self.width]
        end = start + k.shape[2]
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    width: int = 0
    """Columns a per-row update reads back (the longest row after the step)."""

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2


def bytes_per_token(layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype) -> int:
    """KV-cache bytes one token of context costs: a key and a value per layer."""
    return 2 * layers * kv_heads * head_dim * dtype.itemsize
