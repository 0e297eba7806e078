"""Reads Hugging Face-layout folders: config.json, *.safetensors or pytorch_model.bin, tokenizer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from tierwise_operator.api import Architecture

from ..chat import template_from_hf
from ..errors import CheckpointError
from ..models import bert, llama
from .base import Checkpoint, TensorSource, rename
from .limits import bounded_float, bounded_int, check_heads, check_layers
from .tokenizer import TextTokenizer

#: config.json sizes: key, the bound it keeps to, its default (None: required).
_LLAMA_FIELDS = [
    ("vocab_size", "vocab_size", None),
    ("hidden_size", "dim", None),
    ("num_hidden_layers", "n_layers", None),
    ("num_attention_heads", "n_heads", None),
    ("intermediate_size", "intermediate_size", None),
    ("max_position_embeddings", "max_position", 2048),
]
_BERT_FIELDS = [*_LLAMA_FIELDS[:5], ("max_position_embeddings", "max_position", None),
                ("type_vocab_size", "type_vocab_size", 2)]  # fmt: skip

Readers = dict[str, Callable[[], torch.Tensor]]


def read_hf(folder: Path) -> Checkpoint:
    cfg = _json(folder / "config.json")
    kind = cfg.get("model_type")
    if kind not in ("bert", "llama"):
        shown = repr(kind)[:40]
        raise CheckpointError(f"unsupported model_type {shown} in {folder} (bert or llama)")
    _check_config(cfg, kind, f"{folder / 'config.json'}")
    readers, files = _weights(folder)
    tok_path = folder / "tokenizer.json"
    if not tok_path.is_file():
        raise CheckpointError(f"{folder} has no tokenizer.json")
    tokenizer = TextTokenizer.from_file(tok_path)
    tokenizer.chat_template = template_from_hf(folder)
    files += [folder / "config.json", tok_path]
    if kind == "bert":
        return _bert(folder, cfg, readers, tokenizer, files)
    return _llama(folder, cfg, readers, tokenizer, files)


def _bert(
    folder: Path, cfg: dict[str, Any], readers: Readers, tok: TextTokenizer, files: list[Path]
) -> Checkpoint:
    config = bert.BertConfig.from_hf(cfg)
    _check_pooling(folder)
    normalized = {_old_layernorm_names(k): k for k in readers}
    names = rename(normalized, bert.HF_KEYS, bert.HF_IGNORED, bert.HF_PREFIXES)
    check_layers(config.num_layers, names, f"{folder / 'config.json'}: num_hidden_layers")
    tensors = TensorSource({ours: readers[normalized[theirs]] for ours, theirs in names.items()})
    st = folder / "sentence_bert_config.json"
    max_len = (
        bounded_int(_json(st), "max_seq_length", 0, "max_position", str(st))
        if st.is_file()
        else None
    )
    return Checkpoint(
        Architecture.BERT, config, tensors, tok, files, int(max_len or config.max_position)
    )


def _llama(
    folder: Path, cfg: dict[str, Any], readers: Readers, tok: TextTokenizer, files: list[Path]
) -> Checkpoint:
    config = llama.LlamaConfig.from_hf(cfg)
    ignored = llama.HF_IGNORED + ((r"^lm_head\.",) if config.tie_embeddings else ())
    names = rename(readers, llama.HF_KEYS, ignored)
    check_layers(config.n_layers, names, f"{folder / 'config.json'}: num_hidden_layers")
    tensors = TensorSource({ours: readers[theirs] for ours, theirs in names.items()})
    eos = _ids(cfg.get("eos_token_id"))
    gen = folder / "generation_config.json"
    if gen.is_file():
        eos |= _ids(_json(gen).get("eos_token_id"))
    return Checkpoint(
        Architecture.LLAMA, config, tensors, tok, files, config.max_position, frozenset(eos)
    )


def _check_config(cfg: dict[str, Any], kind: str, where: str) -> None:
    """Every size config.json declares is an integer within bounds, and the heads divide."""
    fields = _LLAMA_FIELDS if kind == "llama" else _BERT_FIELDS
    sizes = {key: bounded_int(cfg, key, default, bound, where) for key, bound, default in fields}
    heads = sizes["num_attention_heads"]
    kv_heads = heads
    if kind == "llama" and cfg.get("num_key_value_heads") is not None:
        kv_heads = bounded_int(cfg, "num_key_value_heads", heads, "n_kv_heads", where)
    head_dim = bounded_int(cfg, "head_dim", 0, "head_dim", where) if cfg.get("head_dim") else 0
    check_heads(sizes["hidden_size"], heads, kv_heads, head_dim, where)
    for eps in ("rms_norm_eps", "layer_norm_eps", "rope_theta"):
        bounded_float(cfg, eps, 0.0, where)


def _weights(folder: Path) -> tuple[Readers, list[Path]]:
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        readers: Readers = {}
        for shard in shards:
            try:
                handle = safe_open(str(shard), framework="pt")
            except Exception as exc:
                raise CheckpointError(f"cannot read {shard}: {exc}") from None
            for key in _keys(handle):
                readers[key] = _safetensors_reader(handle, key)
        return readers, shards
    bin_path = folder / "pytorch_model.bin"
    if bin_path.is_file():
        try:
            # mmap maps the storages lazily, like safetensors: no copy until a page is touched.
            state = torch.load(bin_path, map_location="cpu", mmap=True, weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot read {bin_path}: {exc}") from None
        return {k: _constant(t) for k, t in state.items()}, [bin_path]
    raise CheckpointError(f"{folder} has no *.safetensors and no pytorch_model.bin")


def _keys(handle: Any) -> list[str]:
    return list(handle.keys())


def _safetensors_reader(handle: Any, key: str) -> Callable[[], torch.Tensor]:
    def read() -> torch.Tensor:
        tensor: torch.Tensor = handle.get_tensor(key)
        return tensor

    return read


def _constant(tensor: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: tensor


def _old_layernorm_names(name: str) -> str:
    for old, new in bert.HF_RENAMES:
        if name.endswith(old) and "LayerNorm" in name:
            return name[: -len(old)] + new
    return name


def _check_pooling(folder: Path) -> None:
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file() and not _json(pooling).get("pooling_mode_mean_tokens", True):
        raise CheckpointError(f"{pooling}: only mean pooling is supported")


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise CheckpointError(
            f"eos_token_id must be a token id or a list of them, got {value!r}"[:200]
        )
    return set(values)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return data
