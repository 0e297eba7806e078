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
from .tokenizer import TextTokenizer, tokenizer_from_gguf

_FLOAT_TYPES = {
    gguf.GGMLQuantizationType.F32: torch.float32,
    gguf.GGMLQuantizationType.F16: torch.float16,
    gguf.GGMLQuantizationType.BF16: torch.bfloat16,
}


def read_gguf(path: Path) -> Checkpoint:
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:
        raise CheckpointError(f"cannot read GGUF {path}: {exc}") from None
    meta = metadata_of(reader)
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise CheckpointError(f"GGUF architecture {arch!r} is not supported (llama)")
    by_name = {t.name: t for t in reader.tensors}
    config = _config(meta, tied="output.weight" not in by_name)
    if "rope_freqs.weight" in by_name:
        config = replace(
            config, rope_freq_factors=_freq_factors(by_name["rope_freqs.weight"], config)
        )
    names = rename(by_name, llama.GGUF_KEYS, llama.GGUF_IGNORED)
    readers = {ours: _reader(by_name[theirs], ours, config) for ours, theirs in names.items()}
    tok_json = path.parent / "tokenizer.json"
    tokenizer = (
        TextTokenizer.from_file(tok_json) if tok_json.is_file() else tokenizer_from_gguf(meta)
    )
    tokenizer.chat_template = template_from_gguf(meta)
    eos = {int(meta[k]) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
           if k in meta}  # fmt: skip
    return Checkpoint(
        Architecture.LLAMA,
        config,
        TensorSource(readers),
        tokenizer,
        [path],
        config.max_position,
        frozenset(eos),
    )


def metadata_of(reader: gguf.GGUFReader) -> dict[str, Any]:
    meta = {}
    for key, fld in reader.fields.items():
        try:
            meta[key] = fld.contents()
        except Exception:  # a field we cannot decode is one we do not use
            continue
    return meta


def _config(meta: dict[str, Any], tied: bool) -> llama.LlamaConfig:
    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"llama.{key}", default)
        if value is None:
            raise CheckpointError(f"GGUF metadata lacks llama.{key}")
        return value

    heads = int(get("attention.head_count"))
    dim = int(get("embedding_length"))
    return llama.LlamaConfig(
        vocab_size=int(meta.get("llama.vocab_size") or len(meta["tokenizer.ggml.tokens"])),
        dim=dim,
        n_layers=int(get("block_count")),
        n_heads=heads,
        n_kv_heads=int(get("attention.head_count_kv", heads)),
        intermediate_size=int(get("feed_forward_length")),
        max_position=int(get("context_length", 2048)),
        norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(get("rope.freq_base", 10000.0)),
        head_dim=int(get("attention.key_length", dim // heads)),
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
