"""Reference adapters written by `peft` itself on transformers models, with random weights."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch


def peft_adapter(base: Any, folder: Path, seed: int, **lora: Any) -> Any:
    """Saves a LoRA of `base` (untouched) with random A and B to `folder`; returns peft's
    merged model of it, the reference our unmerged per-row computation must match."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(init_lora_weights=False, lora_dropout=0.0, **lora)
    model = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():  # larger than peft's init, so every adapter changes the output
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.05)
    model.save_pretrained(folder)
    return model.merge_and_unload().eval()


def hf_logits(model: Any, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]  # type: ignore[no-any-return]
