"""Writing GGUF files for tests: SentencePiece tokenizers and small Llama models, laid out
as llama.cpp's converter (convert_hf_to_gguf.py) lays them out."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import gguf
import sentencepiece as spm
import torch

EVAL_SET = Path(__file__).parents[2] / "runtime/tierwise_runtime/data/eval_default.jsonl"

#: Hugging Face parameter names -> llama.cpp's, per layer where "{}" stands.
TENSOR_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "model.layers.{}.self_attn.q_proj.weight": "blk.{}.attn_q.weight",
    "model.layers.{}.self_attn.k_proj.weight": "blk.{}.attn_k.weight",
    "model.layers.{}.self_attn.v_proj.weight": "blk.{}.attn_v.weight",
    "model.layers.{}.self_attn.o_proj.weight": "blk.{}.attn_output.weight",
    "model.layers.{}.mlp.gate_proj.weight": "blk.{}.ffn_gate.weight",
    "model.layers.{}.mlp.up_proj.weight": "blk.{}.ffn_up.weight",
    "model.layers.{}.mlp.down_proj.weight": "blk.{}.ffn_down.weight",
    "model.layers.{}.input_layernorm.weight": "blk.{}.attn_norm.weight",
    "model.layers.{}.post_attention_layernorm.weight": "blk.{}.ffn_norm.weight",
}


def train_sentencepiece(*, add_dummy_prefix: bool = True, vocab_size: int = 1200) -> Any:
    """A BPE model with the trainer settings of Llama's tokenizer.model, on the eval set."""
    texts = [json.loads(line)["text"] for line in EVAL_SET.read_text().splitlines()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, split_digits=True,
        add_dummy_prefix=add_dummy_prefix, remove_extra_whitespaces=False,
        normalization_rule_name="identity", allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, minloglevel=2,
    )  # fmt: skip
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def _piece_type(sp: Any, i: int) -> int:
    """The GGUF token type (llama.cpp numbers them as SentencePiece does)."""
    kinds = [(sp.is_unknown, 2), (sp.is_control, 3), (sp.is_unused, 5), (sp.is_byte, 6)]
    return next((kind for test, kind in kinds if test(i)), 1)


def add_sentencepiece(
    writer: gguf.GGUFWriter, sp: Any, *, prefix: bool = True, add_bos: bool | None = None
) -> None:
    writer.add_tokenizer_model("llama")
    size = sp.get_piece_size()
    writer.add_token_list([sp.id_to_piece(i) for i in range(size)])
    writer.add_token_scores([sp.get_score(i) for i in range(size)])
    writer.add_token_types([_piece_type(sp, i) for i in range(size)])
    writer.add_unk_token_id(sp.unk_id())
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_add_space_prefix(prefix)
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)


def finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's Q/K row order for its interleaved RoPE."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def _rope(cfg: Any) -> dict[str, Any]:
    """RoPE settings wherever this transformers version keeps them."""
    params = dict(getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {})
    params.setdefault("rope_theta", getattr(cfg, "rope_theta", None) or 10000.0)
    return params


def llama3_rope_factors(cfg: Any) -> torch.Tensor:
    """The `rope_freqs` divisors convert_hf_to_gguf.py derives from `rope_scaling`."""
    scaling = _rope(cfg)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    freqs = 1.0 / scaling["rope_theta"] ** exponents
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    out = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(out, dtype=torch.float32)


def write_llama(
    path: Path,
    model: Any,
    sp: Any,
    *,
    rope_freqs: bool = True,
    rope_factors: torch.Tensor | None = None,
) -> Path:
    """`model` (a transformers LlamaForCausalLM) as a float32 GGUF with `sp`'s tokenizer;
    Llama 3 RoPE scaling as `rope_freqs` (the converter's factors, or `rope_factors`)."""
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(_rope(cfg)["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    add_sentencepiece(writer, sp)
    state = model.state_dict()
    for layer in range(cfg.num_hidden_layers):
        for theirs, ours in TENSOR_NAMES.items():
            if "{}" not in theirs and layer:
                continue
            w = state[theirs.format(layer)].float()
            if "q_proj" in theirs:
                w = _permute(w, cfg.num_attention_heads)
            elif "k_proj" in theirs:
                w = _permute(w, cfg.num_key_value_heads)
            writer.add_tensor(ours.format(layer), w.contiguous().numpy())
    if rope_freqs and _rope(cfg).get("rope_type") == "llama3":
        factors = llama3_rope_factors(cfg) if rope_factors is None else rope_factors
        writer.add_tensor("rope_freqs.weight", factors.numpy())
    finish(writer)
    return path
