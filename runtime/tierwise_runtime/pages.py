"""Drops resident pages of memory-mapped tensors (madvise MADV_DONTNEED) once they are used."""

from __future__ import annotations

import ctypes
import mmap
import os
from dataclasses import dataclass

import torch

_PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int


@dataclass(frozen=True)
class PageRange:
    """Whole pages inside one memory-mapped tensor (partial pages at its ends are kept)."""

    start: int
    length: int

    @classmethod
    def of(cls, tensor: torch.Tensor) -> PageRange:
        begin = tensor.data_ptr()
        end = begin + tensor.numel() * tensor.element_size()
        first = -(-begin // _PAGE) * _PAGE
        last = end // _PAGE * _PAGE
        return cls(first, max(0, last - first))


def release(ranges: list[PageRange]) -> None:
    """Lets the kernel drop these pages: a clean file-backed page is read back from the page
    cache (or disk) when next touched, so this only frees resident memory. Never call it on
    anonymous memory, whose contents it would zero."""
    for r in ranges:
        if r.length and _libc.madvise(r.start, r.length, mmap.MADV_DONTNEED) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"madvise(MADV_DONTNEED): {os.strerror(err)}")


def trim_heap() -> None:
    """Returns freed heap memory to the system (glibc malloc_trim). Conversion temporaries
    are freed but kept by malloc otherwise, and would count as resident memory."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
