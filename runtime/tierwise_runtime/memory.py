"""What the process really holds in host memory: anonymous, file-backed and peak RSS."""

from __future__ import annotations

import logging
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_KIB = 1024


@dataclass(frozen=True)
class MemoryUsage:
    """Resident memory of this process, in bytes.

    Anonymous pages (heap, tensors built in memory) cannot be dropped under
    pressure; file-backed pages (memory-mapped weights) are page cache the
    kernel can evict and re-read. Shared memory (tmpfs files, shared anonymous
    mappings) is reported apart: it is file-like in the kernel but cannot be
    evicted without swap.
    """

    anon_bytes: int
    file_bytes: int
    shmem_bytes: int
    peak_rss_bytes: int
    """High-water mark of resident memory since start or the last `reset_peak_rss`."""

    @property
    def rss_bytes(self) -> int:
        return self.anon_bytes + self.file_bytes + self.shmem_bytes


def read_memory() -> MemoryUsage:
    """Current usage from /proc/self/status, or psutil where /proc is not there."""
    try:
        fields = _status_fields(_STATUS.read_text())
        return MemoryUsage(
            anon_bytes=fields["RssAnon"],
            file_bytes=fields["RssFile"],
            shmem_bytes=fields["RssShmem"],
            peak_rss_bytes=fields["VmHWM"],
        )
    except (OSError, KeyError):
        return _read_with_psutil()


def reset_peak_rss() -> bool:
    """Restart the peak-RSS high-water mark at the current RSS (Linux only).

    Lets a profiler measure the peak of one phase (load, one batch size) on
    its own. Returns False where the kernel does not support it.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError as exc:
        log.debug("cannot reset the peak RSS: %s", exc)
        return False
    return True


def _status_fields(text: str) -> dict[str, int]:
    """The `Name:  N kB` lines of /proc/self/status, in bytes."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) * _KIB
    return fields


def _read_with_psutil() -> MemoryUsage:
    info = psutil.Process().memory_info()
    shared = getattr(info, "shared", 0)
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * _KIB
    return MemoryUsage(
        anon_bytes=info.rss - shared,
        file_bytes=shared,
        shmem_bytes=0,
        peak_rss_bytes=max(peak_bytes, info.rss),
    )
