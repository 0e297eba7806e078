"""Offload tier: weights written once at their precision under a folder, then memory-mapped.

CPU computes straight from the mapping and drops each block's pages once it has run, so
resident memory stays about one block whatever the model's size; CUDA streams blocks to the
device one ahead of use (see cuda_stream.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import cast

import torch
from safetensors import safe_open
from torch import nn

from tierwise_operator.api import Precision

from .aligned_safetensors import save_aligned
from .checkpoint import Checkpoint
from .cuda_stream import stream_blocks
from .errors import CheckpointError, LoadError
from .materialize import Unit, build_on_meta, load_unit, units
from .pages import PageRange, release
from .quantize import Int4WeightOnlyConfig, QuantConfig, quantize_

FORMAT = 2
"""Layout version of an offload folder; a folder of another version is rewritten."""
MANIFEST = "manifest.json"


class OffloadError(LoadError):
    """The offload folder cannot be written or read."""


def offload_folder(
    root: Path, ckpt: Checkpoint, precision: Precision, config: QuantConfig, device: torch.device
) -> Path:
    """Where this checkpoint at this precision for this device kind lives under `root`."""
    group = f"-g{config.group_size}" if isinstance(config, Int4WeightOnlyConfig) else ""
    return root / f"{ckpt.fingerprint()}-{precision.value}{group}-{device.type}"


def load_offloaded(
    ckpt: Checkpoint,
    config: QuantConfig,
    device: torch.device,
    folder: Path,
) -> nn.Module:
    """The model with every weight memory-mapped from `folder` (written first if missing)."""
    if not _complete(folder):
        write_offload(ckpt, config, device, folder)
    model = quantize_(build_on_meta(ckpt.config), config, device.type)
    ranges = [_map_unit(unit, folder) for unit in units(model)]
    if device.type == "cuda":
        stream_blocks(model, ranges, device)
    else:
        _release_after_use(model, ranges)
    return model.eval()


def write_offload(
    ckpt: Checkpoint, config: QuantConfig, device: torch.device, folder: Path
) -> None:
    """Converts unit by unit (at most one unit in memory) into one safetensors file per unit,
    then renames the finished folder into place, so a crash never leaves a half folder."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model = build_on_meta(ckpt.config)
        used: set[str] = set()
        prefixes = []
        for unit in units(model):
            used.update(load_unit(unit, ckpt.tensors, config, device))
            state = {
                k: v.detach().to("cpu").contiguous() for k, v in unit.module.state_dict().items()
            }
            save_aligned(state, tmp / f"{unit.prefix}.safetensors")
            unit.module = unit.module.to("meta")
            prefixes.append(unit.prefix)
        if set(ckpt.tensors) - used:
            raise CheckpointError("checkpoint has tensors the model lacks")
        (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "units": prefixes}))
        if not _complete(folder):  # another process may have finished the same folder first
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
    except OSError as exc:
        raise OffloadError(f"cannot write offload folder {folder}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _complete(folder: Path) -> bool:
    try:
        return bool(json.loads((folder / MANIFEST).read_text()).get("format") == FORMAT)
    except (OSError, ValueError):
        return False


def _map_unit(unit: Unit, folder: Path) -> list[PageRange]:
    """Assigns the unit's tensors straight from the file mapping; returns their page ranges."""
    path = folder / f"{unit.prefix}.safetensors"
    try:
        handle = safe_open(str(path), framework="pt")
        state: dict[str, torch.Tensor] = {
            k: handle.get_tensor(k)  # type: ignore[no-untyped-call]
            for k in unit.module.state_dict()
        }
    except Exception as exc:
        raise OffloadError(f"cannot map {path}: {exc}") from None
    unit.module.load_state_dict(state, strict=True, assign=True)
    return [PageRange.of(t) for t in state.values()]


def _release_after_use(model: nn.Module, ranges: list[list[PageRange]]) -> None:
    """Drops each block's pages right after it runs, and every unit's after the forward."""
    by_prefix = {u.prefix: r for u, r in zip(units(model), ranges, strict=True)}
    inner = cast(Callable[..., torch.Tensor], model.runner)
    layers = [r for prefix, r in by_prefix.items() if prefix.startswith("layers.")]

    def runner(i: int, block: nn.Module, *args: object) -> torch.Tensor:
        out: torch.Tensor = inner(i, block, *args)
        release(layers[i])
        return out

    model.runner = runner  # type: ignore[assignment]
    everything = [r for rs in ranges for r in rs]
    model.register_forward_hook(lambda *_: release(everything))
