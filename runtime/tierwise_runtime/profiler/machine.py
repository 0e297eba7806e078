"""Describe the machine a profile is measured on, so figures from different machines never mix."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from tierwise_operator.api import MachineInfo


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what the platform module knows
    return platform.processor() or platform.machine()


def machine_info(device: str) -> MachineInfo:
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return MachineInfo(
        cpu=cpu_model(), threads=torch.get_num_threads(), gpu=gpu, torch=torch.__version__
    )
