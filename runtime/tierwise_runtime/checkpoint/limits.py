"""Bounds on what a checkpoint's config may declare, checked before anything is built from it.

A config is read from a file a tenant controls: a value of the wrong type, zero
heads or a million layers must fail at once, naming the field, rather than as a
ZeroDivisionError, a TypeError or minutes spent building a model the file
cannot fill.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import CheckpointError

#: (lowest, highest) accepted for each size, generous beyond any published model.
BOUNDS = {
    "vocab_size": (1, 2**22),
    "dim": (1, 2**16),
    "n_layers": (1, 1024),
    "n_heads": (1, 1024),
    "n_kv_heads": (1, 1024),
    "intermediate_size": (1, 2**20),
    "max_position": (1, 2**22),
    "head_dim": (0, 2**12),
    "type_vocab_size": (1, 2**10),
}
_LAYER = re.compile(r"^layers\.(\d+)\.")


def bounded_int(
    source: Mapping[str, Any], key: str, default: int | None, bound: str, where: str
) -> int:
    """`source[key]` as an int within BOUNDS[bound]; CheckpointError naming `where` and key."""
    value = source.get(key, default)
    if value is None:
        raise CheckpointError(f"{where} lacks {key}")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise CheckpointError(f"{where}: {key} must be an integer, got {_show(value)}")
    low, high = BOUNDS[bound]
    if not low <= value <= high:
        raise CheckpointError(f"{where}: {key} is {value}; it must be between {low} and {high}")
    return value


def bounded_float(source: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = source.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CheckpointError(f"{where}: {key} must be a number, got {_show(value)}")
    number = float(value) if abs(value) < 1e300 else math.inf
    if not math.isfinite(number) or number < 0:
        raise CheckpointError(f"{where}: {key} must be a finite non-negative number")
    return number


def check_heads(dim: int, heads: int, kv_heads: int, head_dim: int, where: str) -> None:
    """Heads that divide as attention needs them to."""
    if kv_heads > heads or heads % kv_heads:
        raise CheckpointError(
            f"{where}: {heads} attention heads are not a multiple of {kv_heads} key/value heads"
        )
    if not head_dim and dim % heads:
        raise CheckpointError(f"{where}: a width of {dim} does not split into {heads} heads")


def check_layers(declared: int, names: Iterable[str], where: str) -> None:
    """The config's layer count matches the layers whose tensors the file holds."""
    found = {int(m.group(1)) for name in names if (m := _LAYER.match(name))}
    if found != set(range(declared)):
        held = f"layers 0-{max(found)}" if found else "no layers"
        raise CheckpointError(
            f"{where} declares {declared} layers, but the file holds tensors for {held} "
            f"({len(found)} layers)"
        )


def _show(value: object) -> str:
    text = repr(value) if not isinstance(value, list | dict) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
