"""Shared fixtures: a random transformers Llama saved HF-style and three peft adapters of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from tierwise_runtime.adapters.manager import AdapterSpec

from .peft_reference import peft_adapter

ADAPTERS: dict[str, dict[str, Any]] = {
    "attn-qv": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    "everything": {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
    },
    "mlp-rslora": {
        "r": 2,
        "lora_alpha": 4,
        "use_rslora": True,
        "target_modules": ["k_proj", "o_proj", "down_proj"],
        "rank_pattern": {"down_proj": 6},
        "alpha_pattern": {"o_proj": 3},
    },
}
"""Three adapters of different ranks, targets and scalings (rsLoRA, per-module patterns)."""


@dataclass(frozen=True)
class LlamaWithAdapters:
    folder: Path
    base: Any
    """transformers' LlamaForCausalLM."""
    merged: dict[str, Any]
    """peft's merged model per adapter name."""
    specs: list[AdapterSpec]


@pytest.fixture(scope="session")
def llama_adapters(tmp_path_factory: pytest.TempPathFactory) -> LlamaWithAdapters:
    from transformers import LlamaConfig, LlamaForCausalLM

    from tierwise_runtime.synthetic import write_word_tokenizer

    root = tmp_path_factory.mktemp("lora-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-5, tie_word_embeddings=False, eos_token_id=511,
    )  # fmt: skip
    base = LlamaForCausalLM(config).eval()
    base.save_pretrained(root / "base")
    write_word_tokenizer(root / "base" / "tokenizer.json", 512)
    merged, specs = {}, []
    for seed, (name, lora) in enumerate(ADAPTERS.items(), start=1):
        merged[name] = peft_adapter(base, root / name, seed, **lora)
        specs.append(AdapterSpec(name, f"file://{root / name}"))
    return LlamaWithAdapters(root / "base", base, merged, specs)
