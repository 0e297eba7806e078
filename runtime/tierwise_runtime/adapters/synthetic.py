"""Random PEFT-format LoRA adapters for a Hugging Face config, for tests, benchmarks and the
demo (no download, no peft needed): the same files `peft`'s save_pretrained writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .peft_format import CONFIG_FILE, WEIGHTS_FILE

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BERT_TARGETS = ("query", "key", "value", "dense")


def module_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """{Hugging Face module name: (in, out)} of every linear layer a LoRA may target."""
    if config["model_type"] == "bert":
        return _bert_shapes(config)
    d, n = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    hd = config.get("head_dim") or d // heads
    kv = (config.get("num_key_value_heads") or heads) * hd
    inter = config["intermediate_size"]
    per = {
        "self_attn.q_proj": (d, heads * hd), "self_attn.k_proj": (d, kv),
        "self_attn.v_proj": (d, kv), "self_attn.o_proj": (heads * hd, d),
        "mlp.gate_proj": (d, inter), "mlp.up_proj": (d, inter), "mlp.down_proj": (inter, d),
    }  # fmt: skip
    return {f"model.layers.{i}.{k}": v for i in range(n) for k, v in per.items()}


def _bert_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    d, inter = config["hidden_size"], config["intermediate_size"]
    per = {
        "attention.self.query": (d, d), "attention.self.key": (d, d),
        "attention.self.value": (d, d), "attention.output.dense": (d, d),
        "intermediate.dense": (d, inter), "output.dense": (inter, d),
    }  # fmt: skip
    n = config["num_hidden_layers"]
    return {f"encoder.layer.{i}.{k}": v for i in range(n) for k, v in per.items()}


def write_lora(
    folder: Path,
    base_config: dict[str, Any],
    *,
    targets: Sequence[str] = ("q_proj", "v_proj"),
    rank: int = 8,
    alpha: float = 16.0,
    seed: int = 0,
    std: float = 0.05,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Writes a LoRA on every module whose last name part is in `targets`, with random A and
    B (N(0, std)), so that it changes the output (PEFT's own init leaves B at zero)."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, (fan_in, fan_out) in module_shapes(base_config).items():
        if module.rsplit(".", 1)[-1] not in targets:
            continue
        key = f"base_model.model.{module}"
        tensors[key + ".lora_A.weight"] = (torch.randn(rank, fan_in, generator=gen) * std).to(dtype)
        tensors[key + ".lora_B.weight"] = (torch.randn(fan_out, rank, generator=gen) * std).to(
            dtype
        )
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA", "task_type": None, "r": rank, "lora_alpha": alpha,
        "target_modules": sorted(targets), "lora_dropout": 0.0, "bias": "none",
        "fan_in_fan_out": False, "use_rslora": False, "use_dora": False,
        "modules_to_save": None, "base_model_name_or_path": None,
    }  # fmt: skip
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    return folder
