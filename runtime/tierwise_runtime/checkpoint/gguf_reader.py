"""Reads llama-architecture GGUF files: metadata, tensors dequantized to float32, tokenizer."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch

from tierwise_operator.api import Architecture

from ..chat import template_from_gguf
from ..errors import CheckpointError
from ..models import llama
from .base import Checkpoint, TensorSource, rename
from .gguf_bounds import check_gguf
from .limits import bounded_float, bounded_int, check_heads, check_layers
from .tokenizer import TextTokenizer, tokenizer_from_gguf

#: What a malformed value in metadata we use raises on its way in.
_MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError)

_FLOAT_TYPES = {
    gguf.GGMLQuantizationType.F32: torch.float32,
    gguf.GGMLQuantizationType.F16: torch.float16,
    gguf.GGMLQuantizationType.BF16: torch.bfloat16,
}


def read_gguf(path: Path) -> Checkpoint:
    check_gguf(path)  # before the reader trusts a single declared size
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:
        raise CheckpointError(f"cannot read GGUF {path}: {exc}") from None
    meta = metadata_of(reader)
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise CheckpointError(f"GGUF architecture {_short(arch)} is not supported (llama)")
    by_name = {t.name: t for t in reader.tensors}
    config = _config(meta, tied="output.weight" not in by_name, where=f"GGUF {path.name}")
    if "rope_freqs.weight" in by_name:
        config = replace(
            config, rope_freq_factors=_freq_factors(by_name["rope_freqs.weight"], config)
        )
    names = rename(by_name, llama.GGUF_KEYS, llama.GGUF_IGNORED)
    check_layers(config.n_layers, names, f"GGUF {path.name}: llama.block_count")
    readers = {ours: _reader(by_name[theirs], ours, config) for ours, theirs in names.items()}
    tokenizer, eos = _tokenizer(path, meta)
    return Checkpoint(
        Architecture.LLAMA,
        config,
        TensorSource(readers),
        tokenizer,
        [path],
        config.max_position,
        frozenset(eos),
    )


def _tokenizer(path: Path, meta: dict[str, Any]) -> tuple[TextTokenizer, set[int]]:
    """The tokenizer, its chat template and end ids; malformed metadata is a CheckpointError
    naming the field (a missing one) or saying which part failed."""
    tok_json = path.parent / "tokenizer.json"
    where = "tokenizer"
    try:
        tokenizer = (
            TextTokenizer.from_file(tok_json) if tok_json.is_file() else tokenizer_from_gguf(meta)
        )
        where = "tokenizer.chat_template"
        tokenizer.chat_template = template_from_gguf(meta)
        where = "tokenizer.ggml.eos_token_id"
        eos = {int(meta[k]) for k in ("tokenizer.ggml.eos_token_id",
                                       "tokenizer.ggml.eot_token_id") if k in meta}  # fmt: skip
    except KeyError as exc:
        raise CheckpointError(f"GGUF {path.name}: metadata lacks {exc.args[0]}") from None
    except _MALFORMED as exc:
        raise CheckpointError(
            f"GGUF {path.name}: malformed {where} metadata: {type(exc).__name__}: {exc}"[:300]
        ) from None
    return tokenizer, eos


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def metadata_of(reader: gguf.GGUFReader) -> dict[str, Any]:
    meta = {}
    for key, fld in reader.fields.items():
        try:
            meta[key] = fld.contents()
        except Exception:  # a field we cannot decode is one we do not use
            continue
    return meta


def _config(meta: dict[str, Any], tied: bool, where: str = "GGUF") -> llama.LlamaConfig:
    def get(key: str, bound: str, default: int | None = None) -> int:
        return bounded_int(meta, f"llama.{key}", default, bound, where)

    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = len(tokens) if isinstance(tokens, list) and tokens else None
    heads = get("attention.head_count", "n_heads")
    dim = get("embedding_length", "dim")
    kv_heads = get("attention.head_count_kv", "n_kv_heads", heads)
    head_dim = get("attention.key_length", "head_dim", 0)
    check_heads(dim, heads, kv_heads, head_dim, where)
    return llama.LlamaConfig(
        vocab_size=bounded_int(meta, "llama.vocab_size", vocab, "vocab_size", where),
        dim=dim,
        n_layers=get("block_count", "n_layers"),
        n_heads=heads,
        n_kv_heads=kv_heads,
        intermediate_size=get("feed_forward_length", "intermediate_size"),
        max_position=get("context_length", "max_position", 2048),
        norm_eps=bounded_float(meta, "llama.attention.layer_norm_rms_epsilon", 1e-5, where),
        rope_theta=bounded_float(meta, "llama.rope.freq_base", 10000.0, where),
        head_dim=head_dim or dim // heads,
        tie_embeddings=tied,
    )


def _freq_factors(tensor: Any, cfg: llama.LlamaConfig) -> tuple[float, ...]:
    """Llama 3 RoPE scaling as llama.cpp's converter stores it: one divisor per frequency."""
    factors = _dequantize(tensor).flatten().tolist()
    if len(factors) != cfg.head_dim // 2:
        raise CheckpointError(
            f"GGUF rope_freqs holds {len(factors)} factors; head size {cfg.head_dim} needs "
            f"{cfg.head_dim // 2}"
        )
    return tuple(float(f) for f in factors)


def _reader(tensor: Any, name: str, cfg: llama.LlamaConfig) -> Callable[[], torch.Tensor]:
    def read() -> torch.Tensor:
        w = _dequantize(tensor)
        # llama.cpp stores Q and K rows permuted for its interleaved RoPE; undo it so the
        # rotate-half convention of the reference implementation applies.
        if name.endswith("attn.wq.weight"):
            return _unpermute(w, cfg.n_heads)
        if name.endswith("attn.wk.weight"):
            return _unpermute(w, cfg.n_kv_heads)
        return w

    return read


def _dequantize(tensor: Any) -> torch.Tensor:
    shape = tuple(int(d) for d in reversed(tensor.shape))
    dtype = _FLOAT_TYPES.get(tensor.tensor_type)
    if dtype is not None:
        with warnings.catch_warnings():  # the memory map is read-only; we never write to it
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(tensor.data).view(dtype).reshape(shape)
    try:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError:
        raise CheckpointError(
            f"GGUF tensor {tensor.name}: type {tensor.tensor_type.name} cannot be dequantized"
        ) from None
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(shape)


def _unpermute(w: torch.Tensor, heads: int) -> torch.Tensor:
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)
