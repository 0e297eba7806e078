"""Builds a model on the meta device and fills it unit by unit from a checkpoint's tensors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .checkpoint import Checkpoint, TensorSource
from .errors import CheckpointError
from .models.bert import BertConfig, BertEncoder
from .models.llama import Llama, LlamaConfig
from .quantize import QuantConfig, quantize_


def build_on_meta(config: BertConfig | LlamaConfig) -> nn.Module:
    """The model's structure with no storage behind it (gpt-fast style)."""
    with torch.device("meta"):
        return BertEncoder(config) if isinstance(config, BertConfig) else Llama(config)


def parameter_count(model: nn.Module) -> int:
    """Parameters of the float model, tied ones counted once."""
    return sum(p.numel() for p in model.parameters())


@dataclass
class Unit:
    """One piece loaded, converted and (with offload) stored at a time: an embedding, a block."""

    prefix: str
    parent: nn.Module
    attr: str

    @property
    def module(self) -> nn.Module:
        return getattr(self.parent, self.attr)  # type: ignore[no-any-return]

    @module.setter
    def module(self, value: nn.Module) -> None:
        setattr(self.parent, self.attr, value)


def units(model: nn.Module) -> Iterator[Unit]:
    """Top-level pieces of the model in forward order, blocks one by one."""
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            for i in range(len(child)):
                yield Unit(f"{name}.{i}", child, str(i))
        else:
            yield Unit(name, model, name)


def load_unit(
    unit: Unit, tensors: TensorSource, config: QuantConfig, device: torch.device
) -> list[str]:
    """Reads the unit's tensors onto `device`, converts it to `config`; returns the names used."""
    wanted = [f"{unit.prefix}.{k}" for k in unit.module.state_dict()]
    missing = [n for n in wanted if n not in tensors]
    if missing:
        raise CheckpointError(f"checkpoint lacks tensors: {', '.join(missing[:3])}")
    state = {n[len(unit.prefix) + 1 :]: tensors[n].to(device) for n in wanted}
    try:
        unit.module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"checkpoint does not fit the model at {unit.prefix}: {first}"
        ) from None
    unit.module = quantize_(unit.module, config, device.type)
    return wanted


def materialize(
    model: nn.Module, checkpoint: Checkpoint, config: QuantConfig, device: torch.device
) -> nn.Module:
    """Loads every unit in turn, so the float copy of at most one unit exists at a time."""
    used: set[str] = set()
    for unit in units(model):
        used.update(load_unit(unit, checkpoint.tensors, config, device))
    unexpected = sorted(set(checkpoint.tensors) - used)
    if unexpected:
        raise CheckpointError(
            f"checkpoint has tensors the model lacks: {', '.join(unexpected[:3])}"
        )
    return model.eval()
