"""LoRA adapters on the Llama decoder equal peft's merged models, alone or batched together."""

from __future__ import annotations

import pytest
import torch

from tierwise_runtime.adapters.attach import attach_adapters
from tierwise_runtime.engine import SamplingParams
from tierwise_runtime.engines import DecoderEngine
from tierwise_runtime.loader import load_engine

from .conftest import ADAPTERS, LlamaWithAdapters
from .peft_reference import hf_logits

PROMPTS = [[1, 5, 7, 9, 11, 3, 40, 41], [4, 8, 2], [100, 200, 300, 301, 302], [9, 9, 17, 33]]


def _engine(setup: LlamaWithAdapters, precision: str = "fp32", **kw: object) -> DecoderEngine:
    engine = load_engine(f"file://{setup.folder}", precision)
    assert isinstance(engine, DecoderEngine)
    attach_adapters(engine, setup.specs, **kw)  # type: ignore[arg-type]
    return engine


@pytest.fixture(scope="module")
def fp32(llama_adapters: LlamaWithAdapters) -> DecoderEngine:
    return _engine(llama_adapters)


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_logits_match_peft_merged_model_at_fp32(
    fp32: DecoderEngine, llama_adapters: LlamaWithAdapters, name: str
) -> None:
    got = fp32.logits(PROMPTS, [name] * len(PROMPTS))
    for row, ids in enumerate(PROMPTS):
        want = hf_logits(llama_adapters.merged[name], ids)
        torch.testing.assert_close(got[row, : len(ids)], want, atol=1e-4, rtol=0)


def test_every_adapter_changes_the_output(
    fp32: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    base = hf_logits(llama_adapters.base, PROMPTS[0])
    for name in ADAPTERS:
        assert (fp32.logits(PROMPTS[:1], [name])[0] - base).abs().max() > 1e-2


def test_the_base_rows_still_match_transformers(
    fp32: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    got = fp32.logits(PROMPTS)
    for row, ids in enumerate(PROMPTS):
        want = hf_logits(llama_adapters.base, ids)
        torch.testing.assert_close(got[row, : len(ids)], want, atol=1e-4, rtol=0)


MIX = ["attn-qv", None, "everything", "mlp-rslora"]
"""Three adapters and the base in one batch."""


def test_a_mixed_batch_equals_each_row_run_alone(fp32: DecoderEngine) -> None:
    together = fp32.logits(PROMPTS, MIX)
    for row, (ids, name) in enumerate(zip(PROMPTS, MIX, strict=True)):
        alone = fp32.logits([ids], [name])[0]
        torch.testing.assert_close(together[row, : len(ids)], alone, atol=1e-5, rtol=0)


def _greedy(
    engine: DecoderEngine, prompts: list[list[int]], names: list[str | None], tokens: int = 6
) -> list[list[int]]:
    params = [SamplingParams(max_tokens=tokens, temperature=0.0, adapter=n) for n in names]
    out: list[list[int]] = [[] for _ in prompts]
    for step in engine.generate(prompts, params):
        for i, token in enumerate(step):
            if token is not None:
                out[i].append(token)
    return out


def test_mixed_decoding_equals_each_sequence_decoded_alone(fp32: DecoderEngine) -> None:
    together = _greedy(fp32, PROMPTS, MIX)
    alone = [_greedy(fp32, [p], [n])[0] for p, n in zip(PROMPTS, MIX, strict=True)]
    assert together == alone
    assert len({tuple(t) for t in together}) > 1


def test_a_sequence_joining_a_running_batch_keeps_its_adapter(fp32: DecoderEngine) -> None:
    session = fp32.session()
    greedy = {n: SamplingParams(max_tokens=5, temperature=0.0, adapter=n) for n in MIX}
    first = session.join([PROMPTS[0]], [greedy["attn-qv"]])
    got: dict[int, list[int]] = {id(r): [] for r in first}
    session.advance()  # first token of row 0 is picked before the others join
    later = session.join(PROMPTS[1:], [greedy[n] for n in MIX[1:]])
    got |= {id(r): [] for r in later}
    while session.rows:
        for row, token in session.advance():
            got[id(row)].append(token)
    rows = [*first, *later]
    solo = [_greedy(fp32, [p], [n], 5)[0] for p, n in zip(PROMPTS, MIX, strict=True)]
    assert [got[id(r)] for r in rows[1:]] == solo[1:]
    assert got[id(rows[0])] == solo[0][1:]


@pytest.mark.parametrize("precision", ["bf16", "int8", "int4"])
def test_quantized_bases_keep_adapters_per_row(
    llama_adapters: LlamaWithAdapters, fp32: DecoderEngine, precision: str
) -> None:
    engine = _engine(llama_adapters, precision)
    together = engine.logits(PROMPTS, MIX)
    reference = fp32.logits(PROMPTS, MIX)
    for row, (ids, name) in enumerate(zip(PROMPTS, MIX, strict=True)):
        alone = engine.logits([ids], [name])[0]
        torch.testing.assert_close(together[row, : len(ids)], alone, atol=0.05, rtol=0.02)
        cos = torch.cosine_similarity(together[row, : len(ids)], reference[row, : len(ids)], -1)
        assert cos.min() > 0.97, (precision, name, cos)
    assert engine.adapters is not None
    assert engine.info.precision == precision
