"""`quantize_(model, config)`: applies the transform registered for the config's type, in place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from .configs import CastConfig, Int4WeightOnlyConfig, Int8WeightOnlyConfig, QuantConfig
from .linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear, int4_fits

log = logging.getLogger(__name__)

Handler = Callable[[nn.Module, Any, str], nn.Module]
_HANDLERS: dict[type, Handler] = {}
C = TypeVar("C")


def register(
    config_type: type[C],
) -> Callable[[Callable[[nn.Module, C, str], nn.Module]], Handler]:
    """Registers the transform that applies configs of `config_type`; it returns the converted
    module (a new one when the root itself is a Linear)."""

    def wrap(fn: Callable[[nn.Module, C, str], nn.Module]) -> Handler:
        _HANDLERS[config_type] = fn
        return fn

    return wrap


def quantize_(model: nn.Module, config: QuantConfig, device: str | None = None) -> nn.Module:
    """Converts `model` (in place where it can) to `config`'s precision for the kernels of
    `device` ("cpu" or "cuda"; default: where the weights are). On meta: shapes only."""
    target = (device or _device_of(model)).split(":")[0]
    return _HANDLERS[type(config)](model, config, target)


def _device_of(model: nn.Module) -> str:
    tensor = next(iter(model.state_dict().values()), None)
    return "cpu" if tensor is None or tensor.device.type == "meta" else tensor.device.type


@register(CastConfig)
def _cast(model: nn.Module, config: CastConfig, target: str) -> nn.Module:
    _cast_floats(model, config.dtype)
    return model


@register(Int8WeightOnlyConfig)
def _int8(model: nn.Module, config: Int8WeightOnlyConfig, target: str) -> nn.Module:
    dtype = config.compute_dtype
    model = _replace_linears(model, lambda lin: Int8WeightOnlyLinear.from_linear(lin, dtype))
    _cast_floats(model, dtype)
    return model


@register(Int4WeightOnlyConfig)
def _int4(model: nn.Module, config: Int4WeightOnlyConfig, target: str) -> nn.Module:
    def convert(lin: nn.Linear) -> nn.Module:
        group = _group_size(lin, config.group_size, target)
        if group is None:
            log.warning("int4: %s keeps %s weights (no group size fits)", lin, config.compute_dtype)
            return lin
        return Int4WeightOnlyLinear.from_linear(lin, group, config.compute_dtype, target)

    model = _replace_linears(model, convert)
    _cast_floats(model, config.compute_dtype)
    return model


def _group_size(lin: nn.Linear, wanted: int, target: str) -> int | None:
    """The largest supported group size up to `wanted` that divides the layer's inputs."""
    for size in (256, 128, 64, 32):
        if size <= wanted and int4_fits(lin.out_features, lin.in_features, size, target):
            return size
    return None


def _replace_linears(model: nn.Module, convert: Callable[[nn.Linear], nn.Module]) -> nn.Module:
    if isinstance(model, nn.Linear):
        return convert(model)
    for name, child in list(model.named_children()):
        setattr(model, name, _replace_linears(child, convert))
    return model


def _cast_floats(model: nn.Module, dtype: torch.dtype) -> None:
    # Only floating tensors not already in dtype: a float32 model stays on its memory map
    # instead of being copied.
    for param in model.parameters():
        if param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)
    for module in model.modules():
        for key, buf in module._buffers.items():
            if buf is not None and buf.is_floating_point() and buf.dtype != dtype:
                module._buffers[key] = buf.to(dtype)
