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
from .tokenizer import TextTokenizer

Readers = dict[str, Callable[[], torch.Tensor]]


def read_hf(folder: Path) -> Checkpoint:
    cfg = _json(folder / "config.json")
    kind = cfg.get("model_type")
    if kind not in ("bert", "llama"):
        raise CheckpointError(f"unsupported model_type {kind!r} in {folder} (bert or llama)")
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
    tensors = TensorSource({ours: readers[normalized[theirs]] for ours, theirs in names.items()})
    st = folder / "sentence_bert_config.json"
    max_len = _json(st).get("max_seq_length") if st.is_file() else None
    return Checkpoint(
        Architecture.BERT, config, tensors, tok, files, int(max_len or config.max_position)
    )


def _llama(
    folder: Path, cfg: dict[str, Any], readers: Readers, tok: TextTokenizer, files: list[Path]
) -> Checkpoint:
    config = llama.LlamaConfig.from_hf(cfg)
    ignored = llama.HF_IGNORED + ((r"^lm_head\.",) if config.tie_embeddings else ())
    names = rename(readers, llama.HF_KEYS, ignored)
    tensors = TensorSource({ours: readers[theirs] for ours, theirs in names.items()})
    eos = _ids(cfg.get("eos_token_id"))
    gen = folder / "generation_config.json"
    if gen.is_file():
        eos |= _ids(_json(gen).get("eos_token_id"))
    return Checkpoint(
        Architecture.LLAMA, config, tensors, tok, files, config.max_position, frozenset(eos)
    )


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
    return {int(v) for v in value} if isinstance(value, list) else {int(value)}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return data
