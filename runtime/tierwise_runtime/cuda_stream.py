"""CUDA offload: blocks stream from the host mapping to the device, one ahead of use.

Two device slots and two pinned host buffers alternate: while block i computes on the
compute stream, block i+1 is copied from the memory map into a pinned buffer (host memcpy)
and from there to the other slot on a side stream. Events order the reuse of each slot
and buffer, so the device holds two blocks at a time and the host one block's pages."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from .materialize import units
from .pages import PageRange, release

_ALIGN = 256
"""Byte alignment of each tensor inside a slot (cuBLAS and tinygemm want aligned operands)."""


@dataclass(frozen=True)
class _Entry:
    name: str
    offset: int
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * self.dtype.itemsize


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _layout(block: nn.Module) -> tuple[list[_Entry], int]:
    entries, offset = [], 0
    for name, t in block.state_dict().items():
        entries.append(_Entry(name, offset, t.dtype, tuple(t.shape)))
        offset += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
    return entries, offset


def _views(buf: torch.Tensor, entries: list[_Entry]) -> dict[str, torch.Tensor]:
    return {
        e.name: buf[e.offset : e.offset + e.nbytes].view(e.dtype).view(e.shape) for e in entries
    }


class BlockStreamer:
    """A block runner that computes block i from device copies streamed in ahead of it."""

    def __init__(self, blocks: nn.ModuleList, ranges: list[list[PageRange]], device: torch.device):
        self.blocks, self.ranges, self.device = blocks, ranges, device
        self.entries, size = _layout(blocks[0])
        for block in blocks:
            if _layout(block)[0] != self.entries:
                raise ValueError("offload streaming needs blocks of one shape")
        self.host = [block.state_dict() for block in blocks]
        self.pinned = [torch.empty(size, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        self.slots = [torch.empty(size, dtype=torch.uint8, device=device) for _ in range(2)]
        self.pinned_views = [_views(b, self.entries) for b in self.pinned]
        self.slot_views = [_views(b, self.entries) for b in self.slots]
        self.copy_stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        self.ready, self.freed, self.copied = ([_event() for _ in range(2)] for _ in range(3))

    def prefetch(self, i: int) -> None:
        s = i % 2
        self.copied[s].synchronize()  # the pinned buffer's previous upload has finished
        for name, view in self.pinned_views[s].items():
            view.copy_(self.host[i][name])
        release(self.ranges[i])
        with torch.cuda.stream(self.copy_stream):
            self.copy_stream.wait_event(self.freed[s])  # the slot's previous block is done
            self.slots[s].copy_(self.pinned[s], non_blocking=True)
            self.ready[s].record(self.copy_stream)
            self.copied[s].record(self.copy_stream)

    def __call__(self, i: int, block: nn.Module, *args: object) -> torch.Tensor:
        s = i % 2
        if i == 0:
            self.prefetch(0)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(self.ready[s])
        out: torch.Tensor = functional_call(block, self.slot_views[s], args)
        self.freed[s].record(compute)
        if i + 1 < len(self.blocks):
            self.prefetch(i + 1)  # overlaps with block i running on the device
        return out


def _event() -> torch.cuda.Event:
    return torch.cuda.Event()  # type: ignore[no-untyped-call]


def stream_blocks(model: nn.Module, ranges: list[list[PageRange]], device: torch.device) -> None:
    """Moves every non-block unit to `device` and makes the model stream its blocks."""
    block_ranges = []
    for unit, unit_ranges in zip(units(model), ranges, strict=True):
        if unit.prefix.startswith("layers."):
            block_ranges.append(unit_ranges)
        else:
            unit.module = unit.module.to(device)
    model.runner = BlockStreamer(model.layers, block_ranges, device)  # type: ignore[arg-type,assignment]
