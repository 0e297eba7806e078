"""Reads PEFT-format LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`) and
checks them against the base model's modules before a byte of their weights is loaded."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..models import bert, llama
from .errors import AdapterError

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"

_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$"
)
"""PEFT's saved names: base_model.model.<module>.lora_A.weight (adapter name stripped)."""

_UNSUPPORTED = {
    "use_dora": "DoRA adapters are not supported (plain LoRA only)",
    "modules_to_save": "modules_to_save (fully trained extra modules) is not supported",
    "lora_bias": "LoRA bias terms are not supported",
    "layer_replication": "layer replication is not supported",
    "target_parameters": "LoRA on parameters (target_parameters) is not supported",
}


@dataclass(frozen=True)
class LinearShape:
    """What a targeted module of the base takes and gives."""

    in_features: int
    out_features: int


@dataclass(frozen=True)
class ModuleLora:
    """One targeted module: A [r, in], B [out, r] and the scale of their product."""

    rank: int
    scaling: float
    a_key: str
    b_key: str


@dataclass(frozen=True)
class AdapterFiles:
    """A checked adapter: which of our modules it changes, at what rank; weights still on disk."""

    name: str
    folder: Path
    modules: Mapping[str, ModuleLora]
    """By our module name (e.g. `layers.0.attn.wq`)."""
    rank: int
    """The largest rank of any module."""
    nbytes: int
    """Bytes of A and B of every module as stored."""
    numel: int
    """Elements of A and B of every module (times the served dtype's size: resident bytes)."""
    base_model: str | None

    def load(self, dtype: torch.dtype, device: torch.device) -> dict[str, tuple[torch.Tensor, ...]]:
        """{module: (A [r, in], B * scaling [out, r])} in `dtype` on `device`."""
        out: dict[str, tuple[torch.Tensor, ...]] = {}
        with safe_open(str(self.folder / WEIGHTS_FILE), framework="pt") as handle:
            for module, lora in self.modules.items():
                a = handle.get_tensor(lora.a_key).to(torch.float32)
                b = handle.get_tensor(lora.b_key).to(torch.float32) * lora.scaling
                out[module] = (a.to(device, dtype), b.to(device, dtype))
        return out


def read_adapter(
    name: str, folder: Path, architecture: str, shapes: Mapping[str, LinearShape]
) -> AdapterFiles:
    """Parses and checks the adapter in `folder` against the base's targetable `shapes`
    (by our module names); raises AdapterError naming `name` and the first problem."""
    config = _config(name, folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise AdapterError(name, f"{weights} does not exist")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            entries = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
            sizes = {key: handle.get_slice(key).get_dtype() for key in entries}
    except Exception as exc:
        raise AdapterError(name, f"cannot read {weights}: {exc}") from None
    pairs = _pairs(name, entries)
    modules = {}
    for theirs, (a_key, b_key) in list(pairs.items()):
        if _unused_by_base(theirs, architecture):
            del pairs[theirs]  # e.g. BERT's pooler: embeddings never run it
            continue
        ours = our_module(theirs, architecture)
        if ours is None or ours not in shapes:
            raise AdapterError(
                name, f"targets {theirs}, which this {architecture} base has no linear layer for"
            )
        shape = (entries[a_key], entries[b_key])
        modules[ours] = _check_module(
            name, theirs, shape=shape, base=shapes[ours], config=config, keys=(a_key, b_key)
        )
    if not modules:
        raise AdapterError(name, f"{weights} holds no LoRA weights")
    used = _used(pairs)
    nbytes = sum(math.prod(entries[k]) * _itemsize(sizes[k]) for k in entries if k in used)
    numel = sum(math.prod(entries[k]) for k in entries if k in used)
    return AdapterFiles(
        name=name, folder=folder, modules=modules, rank=max(m.rank for m in modules.values()),
        nbytes=nbytes, numel=numel, base_model=config.get("base_model_name_or_path"),
    )  # fmt: skip


def _config(name: str, folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise AdapterError(name, f"{folder} is not a folder")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise AdapterError(name, f"{path} does not exist")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(name, f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise AdapterError(name, f"{path} is not a JSON object")
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise AdapterError(name, f"peft_type {config['peft_type']!r} is not LORA")
    for key, why in _UNSUPPORTED.items():
        if config.get(key):
            raise AdapterError(name, why)
    if config.get("bias", "none") != "none":
        raise AdapterError(name, f"bias {config['bias']!r} is not supported (only 'none')")
    if config.get("fan_in_fan_out"):
        raise AdapterError(name, "fan_in_fan_out (GPT-2 style Conv1D) is not supported")
    if not isinstance(config.get("r", 8), int) or config.get("r", 8) < 1:
        raise AdapterError(name, f"r must be a positive integer, not {config.get('r')!r}")
    return config


def _pairs(name: str, entries: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[str, str]]:
    """{their module name: (A key, B key)}; a lone A or B, or a foreign tensor, is an error."""
    found: dict[str, dict[str, str]] = {}
    for key in entries:
        match = _KEY.match(key)
        if match is None:
            raise AdapterError(name, f"unexpected tensor {key!r} (only lora_A/lora_B weights)")
        found.setdefault(match["module"], {})[match["part"]] = key
    for module, parts in found.items():
        if set(parts) != {"A", "B"}:
            missing = "lora_B" if "A" in parts else "lora_A"
            raise AdapterError(name, f"{module} has no {missing} weight")
    return {module: (parts["A"], parts["B"]) for module, parts in found.items()}


def _check_module(
    name: str,
    module: str,
    *,
    shape: tuple[tuple[int, ...], tuple[int, ...]],
    base: LinearShape,
    config: Mapping[str, Any],
    keys: tuple[str, str],
) -> ModuleLora:
    a_shape, b_shape = shape
    expected = int(_pattern(config.get("rank_pattern") or {}, module, config.get("r", 8)))
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise AdapterError(name, f"{module}: LoRA weights must be matrices")
    if a_shape[0] != expected or b_shape[1] != expected:
        raise AdapterError(
            name, f"{module}: rank {a_shape[0]} in the weights, {expected} in {CONFIG_FILE}"
        )
    if a_shape[1] != base.in_features or b_shape[0] != base.out_features:
        raise AdapterError(
            name,
            f"{module}: LoRA maps {a_shape[1]} -> {b_shape[0]} features, the base's layer "
            f"{base.in_features} -> {base.out_features}",
        )
    alpha = float(_pattern(config.get("alpha_pattern") or {}, module, config.get("lora_alpha", 8)))
    scale = alpha / math.sqrt(expected) if config.get("use_rslora") else alpha / expected
    return ModuleLora(rank=expected, scaling=scale, a_key=keys[0], b_key=keys[1])


def _pattern(patterns: Mapping[str, Any], module: str, default: Any) -> Any:
    # PEFT's rule: a key matches a module whose name ends with it at a dot boundary.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _used(pairs: Mapping[str, tuple[str, str]]) -> set[str]:
    return {key for pair in pairs.values() for key in pair}


_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def _itemsize(dtype: str) -> int:
    return _ITEMSIZE.get(dtype, 4)


_UNUSED = {"bert": bert.HF_IGNORED, "llama": llama.HF_IGNORED}
"""Checkpoint parts the base never runs; a LoRA on them changes nothing it serves."""


def _unused_by_base(theirs: str, architecture: str) -> bool:
    return any(re.search(p, theirs + ".") for p in _UNUSED.get(architecture, ()))


_RULES: dict[str, tuple[list[tuple[str, str]], Iterable[str]]] = {
    "llama": (llama.HF_KEYS, ()),
    "bert": (bert.HF_KEYS, bert.HF_PREFIXES),
}


def our_module(theirs: str, architecture: str) -> str | None:
    """Our name for a Hugging Face module name of `architecture` (None when it maps nowhere)."""
    rules, prefixes = _RULES.get(architecture, ([], ()))
    name = theirs + "."
    for prefix in prefixes:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    for pattern, repl in rules:
        if re.search(pattern, name):
            return re.sub(pattern, repl, name).rstrip(".")
    return None
