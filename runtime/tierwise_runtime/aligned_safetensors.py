"""Writes safetensors files whose tensors start on 64-byte boundaries of the file.

A memory map is page-aligned, so file alignment becomes address alignment: torch's CPU
`_weight_int8pack_mm` crashes (SIGSEGV, torch 2.13) on int8 weights that are not 32-byte
aligned, and safetensors' own writer aligns to 8 bytes only. The format forbids gaps, so
alignment padding is stored as small uint8 tensors named `__pad<N>__`, which readers of
the real names never see. Any safetensors reader reads these files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

ALIGN = 64
PAD_PREFIX = "__pad"

_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.int16: "I16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.bool: "BOOL",
}


def save_aligned(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Saves CPU tensors in order, each starting at a multiple of ALIGN bytes into the file."""
    header: dict[str, object] = {}
    layout: list[torch.Tensor | int] = []  # tensors, or the byte count of a pad
    offset = 0
    for name, tensor in tensors.items():
        if offset % ALIGN:
            pad = ALIGN - offset % ALIGN
            header[f"{PAD_PREFIX}{len(layout)}__"] = _entry(torch.uint8, [pad], offset, pad)
            layout.append(pad)
            offset += pad
        nbytes = tensor.numel() * tensor.element_size()
        header[name] = _entry(tensor.dtype, list(tensor.shape), offset, nbytes)
        layout.append(tensor)
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-(8 + len(blob)) % ALIGN)  # data starts aligned too
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for item in layout:
            f.write(bytes(item) if isinstance(item, int) else _bytes(item))


def _entry(dtype: torch.dtype, shape: list[int], start: int, nbytes: int) -> dict[str, object]:
    return {"dtype": _DTYPES[dtype], "shape": shape, "data_offsets": [start, start + nbytes]}


def _bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data  # no copy
