"""GPTQ int4 for a module: codes fitted to what each Linear sees on calibration inputs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .api import _cast_floats, _group_size, _replace_linears
from .configs import Int4WeightOnlyConfig
from .gptq import HessianAccumulator, gptq_codes
from .linear import Int4WeightOnlyLinear, bias_of

log = logging.getLogger(__name__)

Feed = Callable[[], None]
"""Runs the float module over the calibration inputs once (hooks see every Linear's input)."""
Codes = dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""id(Linear) -> (codes, scales, zeros) as `quantize_groups` returns them."""


def fit_gptq(module: nn.Module, feed: Feed, config: Int4WeightOnlyConfig, target: str) -> Codes:
    """GPTQ codes for every Linear of the float32 `module` a group size fits, from one pass of
    `feed`; each Linear's weight is replaced by its dequantized codes, so what runs next
    sees what will be served."""
    linears = [
        (name, lin, size)
        for name, lin in module.named_modules()
        if isinstance(lin, nn.Linear)
        and (size := _group_size(lin, config.group_size, target)) is not None
    ]
    stats = _collect(linears, feed)
    codes: Codes = {}
    # Rows are independent given the Hessian: layers sharing an input (q, k, v; gate, up) are
    # fitted as one stacked matrix, one factorisation and one column sweep for all of them.
    shared: dict[tuple[int, int], list[tuple[str, nn.Linear]]] = {}
    for name, lin, size in linears:
        acc = stats.get(id(lin))
        if acc is None or acc.rows == 0:
            raise ValueError(f"GPTQ: no calibration input reached {name}")
        shared.setdefault((id(acc), size), []).append((name, lin))
    for (_, size), group in shared.items():
        h = next(stats[id(lin)] for _, lin in group).h
        stacked = torch.cat([lin.weight.detach() for _, lin in group])
        with _threads_for_small_ops(stacked.device):
            q, s, z = gptq_codes(stacked, h, size, config.compute_dtype)
        rows = [lin.out_features for _, lin in group]
        for (_, lin), qi, si, zi in zip(
            group,
            torch.split(q, rows),
            torch.split(s, rows),
            torch.split(z, rows),
            strict=True,
        ):
            codes[id(lin)] = (qi.contiguous(), si.contiguous(), zi.contiguous())
            lin.weight.data = _dequantize(qi, si, zi, size).to(lin.weight.dtype)
    return codes


def apply_codes(
    module: nn.Module, codes: Codes, config: Int4WeightOnlyConfig, target: str
) -> nn.Module:
    """`module` with its Linears as int4 layers holding `codes` (those without codes keep
    compute-dtype weights, as `quantize_` leaves them) and its other floats in compute dtype."""

    def convert(lin: nn.Linear) -> nn.Module:
        if id(lin) not in codes:
            log.warning("int4: %s keeps %s weights (no group size fits)", lin, config.compute_dtype)
            return lin
        q, s, z = codes[id(lin)]
        bias = bias_of(lin, config.compute_dtype)
        return Int4WeightOnlyLinear.from_codes(q, s, z, bias, target)

    module = _replace_linears(module, convert)
    _cast_floats(module, config.compute_dtype)
    return module


def _collect(chunk: list[tuple[str, nn.Linear, int]], feed: Feed) -> dict[int, HessianAccumulator]:
    """Input statistics of every Linear in `chunk` over one pass of `feed`. Linears reading the
    same tensor in turn (q, k and v; gate and up) share one accumulator: same statistics."""
    stats: dict[int, HessianAccumulator] = {}
    last: list[tuple[torch.Tensor, HessianAccumulator]] = []  # holding x keeps `is` exact

    def hook(lin: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        x = args[0]
        same = bool(last) and last[0][0] is x
        acc = stats.get(id(lin))
        if acc is None:
            acc = last[0][1] if same else HessianAccumulator(x.shape[-1], x.device)
            stats[id(lin)] = acc
        if same and acc is last[0][1]:
            return  # counted already by the layer this one shares its input with
        acc.add(x)
        last[:] = [(x, acc)]

    handles = [lin.register_forward_hook(hook) for _, lin, _ in chunk]
    try:
        with torch.inference_mode():
            feed()
    finally:
        for handle in handles:
            handle.remove()
        last.clear()
    return stats


def _dequantize(q: torch.Tensor, s: torch.Tensor, z: torch.Tensor, group: int) -> torch.Tensor:
    n, k = q.shape
    sf, zf = s.float(), z.float()
    g = q.float().reshape(n, k // group, group) * sf[..., None] + (zf - 8 * sf)[..., None]
    return g.reshape(n, k)


@contextmanager
def _threads_for_small_ops(device: torch.device) -> Iterator[None]:
    """One CPU thread: GPTQ's column updates are too small to split, and splitting them ran
    25x slower than one thread on a busy 2-core machine."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
