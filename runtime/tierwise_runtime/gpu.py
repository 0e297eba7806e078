"""GPU memory used and total through NVML; no GPU, driver or NVML library reads as absent."""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")


@dataclass(frozen=True)
class GpuMemory:
    """Memory of one device as the driver sees it (all processes on it, not just this one)."""

    name: str
    used_bytes: int
    total_bytes: int


def cuda_ordinal(device: str) -> int | None:
    """The CUDA ordinal of `cuda` / `cuda:N`, None for any other device."""
    match = _CUDA_DEVICE.fullmatch(device)
    if match is None:
        return None
    return int(match.group(1) or 0)


def gpu_memory(device: str) -> GpuMemory | None:
    """Used and total memory of the GPU behind `device`, or None when there is none to read."""
    ordinal = cuda_ordinal(device)
    nvml = _nvml()
    if ordinal is None or nvml is None:
        return None
    try:
        handle = _handle(nvml, ordinal)
        if handle is None:
            return None
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
    except nvml.NVMLError as exc:
        log.debug("NVML cannot read %s: %s", device, exc)
        return None
    return GpuMemory(
        name=name.decode() if isinstance(name, bytes) else str(name),
        used_bytes=int(info.used),
        total_bytes=int(info.total),
    )


@functools.cache
def _nvml() -> ModuleType | None:
    """pynvml, initialised once; None when the library, the driver or a GPU is missing."""
    try:
        import pynvml  # noqa: PLC0415 - optional at run time; absent on CPU-only images
    except ImportError:
        log.debug("pynvml is not installed: GPU memory is not reported")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.debug("NVML is not available (%s): GPU memory is not reported", exc)
        return None
    module: ModuleType = pynvml
    return module


def _handle(nvml: ModuleType, ordinal: int) -> Any:
    """NVML's handle for CUDA ordinal `ordinal`.

    NVML numbers every GPU on the machine; CUDA numbers only those in
    CUDA_VISIBLE_DEVICES (indices or UUIDs), in that order.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        if ordinal >= nvml.nvmlDeviceGetCount():
            return None
        return nvml.nvmlDeviceGetHandleByIndex(ordinal)
    entries = [entry.strip() for entry in visible.split(",")]
    if ordinal >= len(entries) or not entries[ordinal] or entries[ordinal].startswith("-"):
        return None
    entry = entries[ordinal]
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry))
    return nvml.nvmlDeviceGetHandleByUUID(entry)
