"""Random-weight Llama checkpoints in Hugging Face layout, for tests and benchmarks.

Machines without model weights (CI, a bare GPU box) still exercise the whole loading
path with them: config.json, safetensors shards and a word-level tokenizer.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers


def write_llama(
    folder: Path,
    *,
    vocab: int = 1024,
    dim: int = 256,
    layers: int = 2,
    heads: int = 8,
    kv_heads: int = 2,
    intermediate: int = 512,
    context: int = 512,
    tied: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Writes a Llama checkpoint with N(0, 0.02) weights to `folder` (one shard per layer)."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    hd = dim // heads

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * 0.02).to(dtype)

    def ones() -> torch.Tensor:
        return torch.ones(dim, dtype=dtype)

    head = {"model.embed_tokens.weight": rand(vocab, dim), "model.norm.weight": ones()}
    if not tied:
        head["lm_head.weight"] = rand(vocab, dim)
    save_file(head, str(folder / "model-head.safetensors"))
    for i in range(layers):
        p = f"model.layers.{i}."
        block = {
            p + "self_attn.q_proj.weight": rand(heads * hd, dim),
            p + "self_attn.k_proj.weight": rand(kv_heads * hd, dim),
            p + "self_attn.v_proj.weight": rand(kv_heads * hd, dim),
            p + "self_attn.o_proj.weight": rand(dim, heads * hd),
            p + "mlp.gate_proj.weight": rand(intermediate, dim),
            p + "mlp.up_proj.weight": rand(intermediate, dim),
            p + "mlp.down_proj.weight": rand(dim, intermediate),
            p + "input_layernorm.weight": ones(),
            p + "post_attention_layernorm.weight": ones(),
        }
        save_file(block, str(folder / f"model-{i:05d}.safetensors"))
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": vocab,
        "hidden_size": dim,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": context,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "eos_token_id": 1,
        "bos_token_id": 0,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_word_tokenizer(folder / "tokenizer.json", vocab)
    return folder


def write_bert(
    folder: Path,
    *,
    vocab: int = 1024,
    dim: int = 128,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 512,
    context: int = 128,
    seed: int = 0,
) -> Path:
    """Writes a BERT checkpoint (sentence-transformers layout) with random weights."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.02

    def norm(prefix: str) -> dict[str, torch.Tensor]:
        return {prefix + "weight": 1 + rand(dim), prefix + "bias": rand(dim)}

    state = {
        "embeddings.word_embeddings.weight": rand(vocab, dim),
        "embeddings.position_embeddings.weight": rand(context, dim),
        "embeddings.token_type_embeddings.weight": rand(2, dim),
        **norm("embeddings.LayerNorm."),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, (rows, cols) in {
            "attention.self.query": (dim, dim),
            "attention.self.key": (dim, dim),
            "attention.self.value": (dim, dim),
            "attention.output.dense": (dim, dim),
            "intermediate.dense": (intermediate, dim),
            "output.dense": (dim, intermediate),
        }.items():
            state[p + name + ".weight"] = rand(rows, cols)
            state[p + name + ".bias"] = rand(rows)
        state.update(norm(p + "attention.output.LayerNorm."))
        state.update(norm(p + "output.LayerNorm."))
    save_file(state, str(folder / "model.safetensors"))
    config = {
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": dim,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "max_position_embeddings": context,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "type_vocab_size": 2,
        "pad_token_id": 0,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_word_tokenizer(folder / "tokenizer.json", vocab)
    return folder


def write_word_tokenizer(path: Path, vocab: int) -> None:
    """A whitespace word-level tokenizer over the words w0 .. w{vocab-1} (w2 is unknown)."""
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w2"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))


def llama_parameters(
    *, vocab: int, dim: int, layers: int, heads: int, kv_heads: int, intermediate: int, tied: bool
) -> int:
    """Parameter count of the checkpoint write_llama would write with these sizes."""
    hd = dim // heads
    attn = 2 * heads * hd * dim + 2 * kv_heads * hd * dim
    block = attn + 3 * intermediate * dim + 2 * dim
    return layers * block + vocab * dim * (1 if tied else 2) + dim
