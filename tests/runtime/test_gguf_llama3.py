"""A Llama 3 style GGUF (RoPE scaling stored as llama.cpp's `rope_freqs` factors, Q/K rows
permuted, float32 tensors) computes the logits transformers computes for the same weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tierwise_runtime.engines import DecoderEngine
from tierwise_runtime.errors import CheckpointError
from tierwise_runtime.loader import load_engine

from .gguf_writing import llama3_rope_factors, train_sentencepiece, write_llama

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 32,
               "rope_theta": 500000.0}  # fmt: skip
#: Longer than the original context, so every band of the scaling is exercised.
IDS = [[(7 * i) % 1100 + 3 for i in range(120)]]


@pytest.fixture(scope="module")
def sp() -> Any:
    return train_sentencepiece()


def reference(sp: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=sp.get_piece_size(), hidden_size=64, intermediate_size=160,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_scaling=dict(LLAMA3_ROPE),
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def logits(engine: Any) -> torch.Tensor:
    assert isinstance(engine, DecoderEngine)
    return engine.logits(IDS)[0]


def test_llama3_gguf_matches_transformers(sp: Any, tmp_path: Path) -> None:
    model = reference(sp)
    path = write_llama(tmp_path / "llama3.gguf", model, sp)
    with torch.no_grad():
        want = model(torch.tensor(IDS)).logits[0]
    torch.testing.assert_close(logits(load_engine(f"file://{path}", "fp32")), want,
                               atol=1e-4, rtol=0)  # fmt: skip


def test_the_frequency_factors_are_what_makes_it_match(sp: Any, tmp_path: Path) -> None:
    model = reference(sp)
    scaled = load_engine(f"file://{write_llama(tmp_path / 'a.gguf', model, sp)}", "fp32")
    plain = write_llama(tmp_path / "b.gguf", model, sp, rope_freqs=False)
    gap = (logits(scaled) - logits(load_engine(f"file://{plain}", "fp32"))).abs().max()
    # Ten times the tolerance the match above allows: without the factors it would fail.
    assert gap > 1e-3, f"the test would pass without rope_freqs (max gap {gap:.2e})"
    factors = llama3_rope_factors(model.config)
    assert factors.min() == 1.0 and factors.max() == 8.0  # high, low and smoothed bands


def test_factors_of_the_wrong_length_are_refused(sp: Any, tmp_path: Path) -> None:
    short = llama3_rope_factors(reference(sp).config)[:4]
    path = write_llama(tmp_path / "bad.gguf", reference(sp), sp, rope_factors=short)
    with pytest.raises(CheckpointError, match="rope_freqs holds 4 factors; head size 16 needs 8"):
        load_engine(f"file://{path}", "fp32")
