"""A Linear (float or quantized) plus per-row low-rank updates, one adapter slot per batch row.

Punica/S-LoRA style: the base weight is never merged, so one batch can mix rows for
different adapters and the base. Each wrapped layer keeps its adapters' A and B stacked by
slot (A [slots, r, in], B [out, slots, r], ranks zero-padded, slot 0 all zeros for the
base). A batch of one slot is two small matmuls; a mixed batch multiplies every row by all
slots' A at once, keeps each row's own slot (a one-hot mask) and multiplies by all B: two
matmuls and a mask whatever the mix, instead of copying each row's A and B per layer and
step (two runs on a loaded machine could not tell the two apart; the mask does more
arithmetic, proportional to the slots, for fewer ops and no copies).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

BASE_SLOT = 0
"""The slot of rows that use no adapter: its A and B are zeros and are never computed."""


class AdapterRows:
    """Which slot each row of the running forward uses; set by the engine around a forward."""

    def __init__(self) -> None:
        self.slots: torch.Tensor | None = None
        """[B] int64 on the model's device, or None: every row on the base."""
        self.single: int | None = BASE_SLOT
        """The one slot every row shares, or None when rows differ."""
        self._masks: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    @contextlib.contextmanager
    def use(self, slots: Sequence[int], device: torch.device) -> Iterator[None]:
        previous = (self.slots, self.single)
        distinct = set(slots)
        self.single = next(iter(distinct)) if len(distinct) == 1 else None
        self.slots = None if self.single is not None else torch.tensor(list(slots), device=device)
        masks, self._masks = self._masks, {}
        try:
            yield
        finally:
            self.slots, self.single = previous
            self._masks = masks

    def mask(self, slots: int, dtype: torch.dtype) -> torch.Tensor:
        """[B, slots] one-hot of each row's slot (made once per forward, not per layer)."""
        key = (slots, dtype)
        if key not in self._masks:
            assert self.slots is not None
            self._masks[key] = F.one_hot(self.slots, slots).to(dtype)
        return self._masks[key]


class LoraLinear(nn.Module):
    """y = base(x) + (x A_s^T) B_s^T for each row's slot s; B already carries the scaling."""

    lora_a: torch.Tensor
    lora_b: torch.Tensor

    def __init__(self, base: nn.Module, rows: AdapterRows, dtype: torch.dtype) -> None:
        super().__init__()
        self.base = base
        self.rows = rows
        self.in_features: int = base.in_features  # type: ignore[assignment]
        self.out_features: int = base.out_features  # type: ignore[assignment]
        self.active: set[int] = set()
        """Slots whose adapter changes this layer."""
        device = _device(base)
        # Non-persistent: the base's weight_bytes stays the base's; adapters are counted apart.
        # Stacks grow with the highest slot in use (`reserve`) and the largest rank (`put`).
        empty_a = torch.zeros(1, 0, self.in_features, dtype=dtype, device=device)
        self.register_buffer("lora_a", empty_a, persistent=False)
        empty_b = torch.zeros(self.out_features, 1, 0, dtype=dtype, device=device)
        self.register_buffer("lora_b", empty_b, persistent=False)

    def put(self, slot: int, a: torch.Tensor, b: torch.Tensor) -> None:
        """Holds A [r, in] and B [out, r] in `slot` (growing the stacks as needed)."""
        rank = a.shape[0]
        self._grow(slot + 1, rank)
        self.lora_a[slot].zero_()
        self.lora_b[:, slot].zero_()
        self.lora_a[slot, :rank] = a
        self.lora_b[:, slot, :rank] = b
        self.active.add(slot)

    def reserve(self, slots: int) -> None:
        """Makes room for slots 0..slots-1 (empty ones are zeros: they add nothing)."""
        self._grow(slots, 0)

    def clear(self, slot: int) -> None:
        if slot in self.active:
            self.lora_a[slot].zero_()
            self.lora_b[:, slot].zero_()
            self.active.discard(slot)

    def _grow(self, slots: int, rank: int) -> None:
        have_slots, have_rank = self.lora_a.shape[0], self.lora_a.shape[1]
        if slots <= have_slots and rank <= have_rank:
            return
        slots, rank = max(slots, have_slots), max(rank, have_rank)
        a = self.lora_a.new_zeros(slots, rank, self.in_features)
        b = self.lora_b.new_zeros(self.out_features, slots, rank)
        a[:have_slots, :have_rank] = self.lora_a
        b[:, :have_slots, :have_rank] = self.lora_b
        self.lora_a, self.lora_b = a, b

    def stack_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.lora_a, self.lora_b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, S, in] -> [B, S, out]
        y: torch.Tensor = self.base(x)
        single, slots = self.rows.single, self.rows.slots
        if single is not None:
            if single not in self.active:
                return y
            h = F.linear(F.linear(x.to(self.lora_a.dtype), self.lora_a[single]),
                         self.lora_b[:, single])  # fmt: skip
            return y + h.to(y.dtype)
        assert slots is not None
        if not self.active:
            return y
        n, r = self.lora_a.shape[0], self.lora_a.shape[1]
        xa = x.to(self.lora_a.dtype).reshape(x.shape[0], -1, self.in_features)  # [B, S, in]
        h = F.linear(xa, self.lora_a.view(n * r, self.in_features))  # [B, S, n * r]
        mask = self.rows.mask(n, h.dtype)[:, None, :, None]  # [B, 1, n, 1]
        h = (h.view(*h.shape[:2], n, r) * mask).view(*h.shape[:2], n * r)
        out = F.linear(h, self.lora_b.view(self.out_features, n * r))  # [B, S, out]
        return y + out.reshape(y.shape).to(y.dtype)


def _device(module: nn.Module) -> torch.device:
    for tensor in module.state_dict().values():
        device: torch.device = tensor.device
        return device
    return torch.device("cpu")


def wrap_linears(
    model: nn.Module, names: Sequence[str], rows: AdapterRows, dtype: torch.dtype
) -> dict[str, LoraLinear]:
    """Replaces each named module (a Linear or a quantized one) by a LoraLinear around it."""
    wrapped = {}
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        current = getattr(parent, attr)
        if not isinstance(current, LoraLinear):
            current = LoraLinear(current, rows, dtype)
            setattr(parent, attr, current)
        wrapped[name] = current
    return wrapped


def targetable(model: nn.Module) -> dict[str, nn.Module]:
    """Modules an adapter may target, by name: every layer with in_features and out_features
    (a wrapped one under the wrapper's name)."""
    out: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLinear):
            out[name] = module.base
        elif name and not name.endswith(".base") and _is_linear(module):
            out[name] = module
    return out


def _is_linear(module: nn.Module) -> bool:
    return hasattr(module, "in_features") and hasattr(module, "out_features")
