"""SmolLM2-135M-Instruct from its Q4_1 GGUF: tokenizer, weights (Q/K unpermuted) and answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from tierwise_runtime.engine import Engine, SamplingParams

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_completes_the_capital_of_france_with_paris(
    smollm: Callable[[str], Engine], precision: str
) -> None:
    engine = smollm(precision)
    prompt = engine.tokenize(["The capital of France is"])
    steps = engine.generate(prompt, [SamplingParams(max_tokens=4, temperature=0)])  # type: ignore[union-attr]
    text = engine.detokenize([s[0] for s in steps if s[0] is not None])  # type: ignore[union-attr]
    assert text.strip().startswith("Paris"), text


def test_tokenizer_from_gguf_metadata_matches_transformers(
    smollm: Callable[[str], Engine], sentences: list[str]
) -> None:
    from transformers import AutoTokenizer

    from tierwise_runtime.sources import resolve_source

    gguf = resolve_source("builtin://smollm2-135m")
    reference = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    texts = [*sentences, "<|im_start|>user\nHi<|im_end|>\n", "  spaces\t\tand 3.14159 digits"]
    ours = smollm("fp32").tokenize(texts)
    assert ours == [reference(t)["input_ids"] for t in texts]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_next_tokens_agree_with_fp32(
    smollm: Callable[[str], Engine], sentences: list[str], precision: str
) -> None:
    ids = smollm("fp32").tokenize(sentences[:16])
    ref = smollm("fp32").logits(ids).argmax(-1)  # type: ignore[union-attr]
    got = smollm(precision).logits(ids).argmax(-1)  # type: ignore[union-attr]
    mask = torch.zeros_like(ref, dtype=torch.bool)
    for row, seq in enumerate(ids):
        mask[row, : len(seq)] = True
    agreement = (ref == got)[mask].float().mean()
    assert agreement >= 0.9, f"{precision} top-1 agreement {agreement:.3f}"


def test_info_reports_what_the_gguf_holds(smollm: Callable[[str], Engine]) -> None:
    engine = smollm("fp32")
    info = engine.info
    assert info.max_tokens == 8192
    assert info.parameters == 134_515_008  # tied embeddings counted once
    assert info.weight_bytes == 4 * info.parameters
    # 30 layers, 3 KV heads of 64 dims, key and value, float32
    assert info.kv_cache_bytes_per_token == 2 * 30 * 3 * 64 * 4
    assert smollm("bf16").info.kv_cache_bytes_per_token == 2 * 30 * 3 * 64 * 2
    assert 2 in engine.eos_token_ids  # type: ignore[union-attr]
