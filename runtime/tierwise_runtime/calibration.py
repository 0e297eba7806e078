"""Which int4 codes a load uses, and the calibration texts GPTQ fits them to (none of them an
evaluation text, so accuracy measured on an eval set is not fitted to)."""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import torch
from torch import nn

from tierwise_operator.api import Precision

from .checkpoint import Checkpoint
from .errors import CheckpointError, PrecisionError
from .materialize import load_unit, units
from .models.bert import BertEncoder
from .models.llama import Llama
from .quantize import CastConfig, Int4WeightOnlyConfig
from .quantize.calibrate import apply_codes, fit_gptq

MAX_TOKENS = 256
"""Each calibration text is cut to this many tokens (as the accuracy measures cut theirs)."""


class Calibration(StrEnum):
    GPTQ = "gptq"
    """Codes fitted by GPTQ to the inputs each layer sees on the calibration texts."""
    RTN = "rtn"
    """Round-to-nearest codes, no data."""


def resolve(precision: Precision, calibration: str | None, offload: bool) -> Calibration | None:
    """The int4 codes a load uses: GPTQ unless asked otherwise; round-to-nearest when offloaded
    (offload converts one block at a time and never holds the whole float model to run)."""
    if precision is not Precision.INT4:
        if calibration is not None:
            raise PrecisionError(f"calibration applies to int4 only, not {precision.value}")
        return None
    if calibration is None:
        return Calibration.RTN if offload else Calibration.GPTQ
    try:
        chosen = Calibration(calibration)
    except ValueError:
        choices = ", ".join(c.value for c in Calibration)
        raise PrecisionError(f"unknown calibration {calibration!r}: choose {choices}") from None
    if chosen is Calibration.GPTQ and offload:
        raise PrecisionError("gptq int4 needs the float model in memory: offload serves rtn int4")
    return chosen


@cache
def calibration_texts() -> tuple[str, ...]:
    """The bundled calibration set (data/calibration_default.jsonl)."""
    raw = resources.files("tierwise_runtime").joinpath("data/calibration_default.jsonl")
    return tuple(json.loads(line)["text"] for line in raw.read_text().splitlines() if line.strip())


class _Captured(Exception):
    """Stops a forward pass once the first block's inputs are recorded."""


def materialize_gptq(
    model: nn.Module, ckpt: Checkpoint, config: Int4WeightOnlyConfig, device: torch.device
) -> nn.Module:
    """Loads `model` as GPTQ int4 block by block, as GPTQ's reference does: the calibration
    texts' inputs to block 0 are recorded, then each block is loaded in float32, fitted to
    the inputs it sees, and run (as served) to give the next block its inputs. At most one
    float block is held, as `materialize` holds: calibration costs time, not memory."""
    blocks = [u for u in units(model) if isinstance(u.parent, nn.ModuleList)]
    block_ids = {id(u.module) for u in blocks}
    used: set[str] = set()
    for unit in units(model):
        if id(unit.module) not in block_ids:  # embeddings, norms, a head: as `quantize_` does
            used.update(load_unit(unit, ckpt.tensors, config, device))
    runs = _block_inputs(model, ckpt, device)
    fp32 = CastConfig(torch.float32)
    for unit in blocks:
        used.update(load_unit(unit, ckpt.tensors, fp32, device))
        block = unit.module

        def run(block: nn.Module = block, runs: list[tuple[Any, ...]] = runs) -> None:
            for args in runs:
                block(*args)

        codes = fit_gptq(block, run, config, device.type)
        with torch.inference_mode():
            runs = [(block(*args), *args[1:]) for args in runs]
        unit.module = apply_codes(block, codes, config, device.type)
    unexpected = sorted(set(ckpt.tensors) - used)
    if unexpected:
        raise CheckpointError(
            f"checkpoint has tensors the model lacks: {', '.join(unexpected[:3])}"
        )
    return model.eval()


def _block_inputs(
    model: nn.Module, ckpt: Checkpoint, device: torch.device
) -> list[tuple[Any, ...]]:
    """What block 0 receives for each calibration text, floats in float32."""
    captured: list[tuple[Any, ...]] = []

    def capture(i: int, block: nn.Module, *args: Any) -> torch.Tensor:
        captured.append(tuple(_float32(a) for a in args))
        raise _Captured

    assert isinstance(model, BertEncoder | Llama)
    saved = model.runner
    model.runner = capture
    try:
        with torch.inference_mode():
            for ids in ckpt.tokenizer.encode(list(calibration_texts())):
                ids_t = torch.tensor([ids[: min(MAX_TOKENS, ckpt.max_tokens)]], device=device)
                try:
                    if isinstance(model, BertEncoder):
                        model(ids_t, torch.ones_like(ids_t))
                    else:
                        model(ids_t, torch.arange(ids_t.shape[1], device=device)[None])
                except _Captured:
                    pass
    finally:
        model.runner = saved
    return captured


def _float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, tuple):
        return tuple(_float32(v) for v in value)
    return value
