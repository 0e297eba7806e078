"""The Llama-style decoder matches transformers' LlamaForCausalLM and decodes as specified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tierwise_operator.api import Architecture, Task
from tierwise_runtime.engine import EmbeddingEngine, GenerationEngine, SamplingParams
from tierwise_runtime.engines import DecoderEngine
from tierwise_runtime.errors import CheckpointError, InputError
from tierwise_runtime.loader import load_engine

PROMPTS = [[1, 5, 7, 9, 11, 3, 40, 41], [4, 8, 2], [100, 200, 300, 301, 302]]


def _reference(folder: Path, **config: Any) -> Any:
    """A random LlamaForCausalLM saved HF-style to `folder`, with a word-level tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tierwise_runtime.synthetic import write_word_tokenizer

    torch.manual_seed(0)
    settings = {
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,  # grouped-query attention: 4 query heads per KV head
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "eos_token_id": 511,
    }
    model = LlamaForCausalLM(LlamaConfig(**{**settings, **config})).eval()
    model.save_pretrained(folder)
    write_word_tokenizer(folder / "tokenizer.json", 512)
    return model


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, DecoderEngine]:
    folder = tmp_path_factory.mktemp("hf-llama")
    model = _reference(folder)
    engine = load_engine(f"file://{folder}", "fp32")
    assert isinstance(engine, DecoderEngine)
    return model, engine


def _hf_logits(model: Any, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]  # type: ignore[no-any-return]


def test_logits_match_transformers(reference: tuple[Any, DecoderEngine]) -> None:
    model, engine = reference
    got = engine.logits(PROMPTS)  # right-padded batch
    for row, ids in enumerate(PROMPTS):
        torch.testing.assert_close(got[row, : len(ids)], _hf_logits(model, ids), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "config",
    [
        {"tie_word_embeddings": True},
        {"num_key_value_heads": 8},
        {
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            "rope_theta": 500000.0,
        },
    ],
    ids=["tied-embeddings", "multi-head", "llama3-rope"],
)
def test_variants_match_transformers(tmp_path: Path, config: dict[str, Any]) -> None:
    model = _reference(tmp_path, **config)
    engine = load_engine(f"file://{tmp_path}", "fp32")
    ids = list(range(3, 200, 3))
    torch.testing.assert_close(
        engine.logits([ids])[0],  # type: ignore[union-attr]
        _hf_logits(model, ids),
        atol=1e-4,
        rtol=0,
    )


def test_greedy_generation_matches_transformers(reference: tuple[Any, DecoderEngine]) -> None:
    model, engine = reference
    params = [SamplingParams(max_tokens=12, temperature=0.0)] * len(PROMPTS)
    steps = list(engine.generate(PROMPTS, params))  # left-padded batch through the KV cache
    for row, ids in enumerate(PROMPTS):
        with torch.no_grad():
            hf = model.generate(
                torch.tensor([ids]), max_new_tokens=12, do_sample=False, eos_token_id=None
            )[0, len(ids) :].tolist()
        assert [s[row] for s in steps] == hf


def test_info_describes_the_decoder(reference: tuple[Any, DecoderEngine]) -> None:
    _, engine = reference
    assert isinstance(engine, GenerationEngine) and not isinstance(engine, EmbeddingEngine)
    info = engine.info
    assert (info.task, info.architecture, info.max_tokens) == (
        Task.TEXT_GENERATION,
        Architecture.LLAMA,
        256,
    )
    # a key and a value per layer: 2 layers x 2 KV heads x head_dim 8 x 4 bytes
    assert info.kv_cache_bytes_per_token == 2 * 2 * 2 * 8 * 4
    assert info.weight_bytes == 4 * info.parameters
    assert engine.eos_token_ids == frozenset({511})


def _run(engine: DecoderEngine, prompts: list[list[int]], **params: Any) -> list[list[int]]:
    steps = list(engine.generate(prompts, [SamplingParams(**params)] * len(prompts)))
    return [[s[i] for s in steps if s[i] is not None] for i in range(len(prompts))]  # type: ignore[misc]


def test_seeded_sampling_repeats_and_other_seeds_differ(
    reference: tuple[Any, DecoderEngine],
) -> None:
    _, engine = reference
    first = _run(engine, PROMPTS[:1], max_tokens=20, temperature=1.5, seed=7)
    assert _run(engine, PROMPTS[:1], max_tokens=20, temperature=1.5, seed=7) == first
    assert _run(engine, PROMPTS[:1], max_tokens=20, temperature=1.5, seed=8) != first


def test_tiny_top_p_is_greedy(reference: tuple[Any, DecoderEngine]) -> None:
    _, engine = reference
    greedy = _run(engine, PROMPTS, max_tokens=8, temperature=0)
    assert _run(engine, PROMPTS, max_tokens=8, temperature=1.0, top_p=1e-6, seed=1) == greedy


def test_a_stop_token_is_yielded_once_then_the_sequence_is_done(
    reference: tuple[Any, DecoderEngine],
) -> None:
    _, engine = reference
    greedy = _run(engine, PROMPTS[:1], max_tokens=8, temperature=0)[0]
    stop = greedy[3]
    steps = list(
        engine.generate(
            PROMPTS[:2],
            [
                SamplingParams(max_tokens=8, temperature=0, stop_token_ids=frozenset({stop})),
                SamplingParams(max_tokens=8, temperature=0),
            ],
        )
    )
    first = [s[0] for s in steps]
    assert first[: greedy.index(stop) + 1] == greedy[: greedy.index(stop) + 1]
    assert all(t is None for t in first[greedy.index(stop) + 1 :])
    assert all(s[1] is not None for s in steps) and len(steps) == 8


def test_each_sequence_stops_at_its_own_max_tokens(reference: tuple[Any, DecoderEngine]) -> None:
    _, engine = reference
    steps = list(
        engine.generate(
            PROMPTS[:2],
            [
                SamplingParams(max_tokens=2, temperature=0),
                SamplingParams(max_tokens=5, temperature=0),
            ],
        )
    )
    assert len(steps) == 5
    assert [s[0] is None for s in steps] == [False, False, True, True, True]


@pytest.mark.parametrize(
    ("prompts", "max_tokens", "message"),
    [
        ([[]], 4, "empty prompt"),
        ([list(range(250))], 10, "exceeds the model's context of 256"),
    ],
)
def test_bad_prompts_are_input_errors(
    reference: tuple[Any, DecoderEngine], prompts: list[list[int]], max_tokens: int, message: str
) -> None:
    _, engine = reference
    with pytest.raises(InputError, match=message):
        engine.generate(prompts, [SamplingParams(max_tokens=max_tokens)])


def test_text_round_trips_through_the_tokenizer(reference: tuple[Any, DecoderEngine]) -> None:
    _, engine = reference
    ids = engine.tokenize(["w5 w6 w7"])[0]
    assert ids == [5, 6, 7] and engine.detokenize(ids) == "w5 w6 w7"


def test_a_checkpoint_missing_a_tensor_names_it(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    _reference(tmp_path)
    weights = tmp_path / "model.safetensors"
    state = load_file(weights)
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, weights)
    with pytest.raises(CheckpointError, match=r"lacks tensors: layers\.1\.mlp\.up\.weight"):
        load_engine(f"file://{tmp_path}", "fp32")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"config.json": '{"model_type": "gpt2"}', "tokenizer.json": "{}"}, "unsupported"),
        ({"config.json": "not json"}, "cannot read"),
        ({"notes.txt": "hello"}, "neither config.json nor a .gguf"),
        ({"model.gguf": "not a gguf"}, "cannot read GGUF"),
    ],
)
def test_unreadable_checkpoints_fail_with_a_reason(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_engine(f"file://{tmp_path}", "fp32")
