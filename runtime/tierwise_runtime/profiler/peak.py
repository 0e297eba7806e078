"""Peak memory of one candidate inside a long-lived profiling process.

Linux keeps the process's peak RSS (VmHWM) and lets a process reset it by
writing 5 to /proc/self/clear_refs, so each candidate's peak is measured on its
own without a fresh process per candidate. Freed heap is handed back with
malloc_trim between candidates so one candidate's garbage is not the next's peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from pathlib import Path

import torch


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    return _status_kib("VmHWM") * 1024


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
    # Without clear_refs the peak covers the whole process so far: an
    # overestimate, never an underestimate.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_since_reset(device: str) -> int:
    """Bytes at the peak since `reset_peak`: device memory on CUDA, process RSS otherwise."""
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    return peak_rss_bytes()
