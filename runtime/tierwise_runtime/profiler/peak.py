"""Peak memory of one candidate inside a long-lived profiling process.

The process's peak RSS is reset before each candidate (`memory.reset_peak_rss`),
so each peak is measured on its own without a fresh process per candidate.
Freed heap is handed back with malloc_trim first, so one candidate's garbage is
not the next one's peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import torch

from ..memory import read_memory, reset_peak_rss


def release_memory() -> None:
    """Collect garbage and return free heap pages to the OS."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device: str) -> None:
    release_memory()
    # Where the reset is unsupported the peak covers the whole process so far:
    # an overestimate, never an underestimate.
    reset_peak_rss()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_since_reset(device: str) -> int:
    """Bytes at the peak since `reset_peak`: device memory on CUDA, process RSS otherwise."""
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    return read_memory().peak_rss_bytes
