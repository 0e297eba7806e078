"""Sentence embeddings from a BERT-style encoder: tokenize, pad, encode, pool."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..adapters.manager import AdapterManager, adapter_rows
from ..checkpoint.tokenizer import TextTokenizer
from ..engine import EngineInfo
from ..errors import InputError
from ..models.bert import BertEncoder


class EncoderEngine:
    """An EmbeddingEngine: texts longer than `info.max_tokens` are truncated, as
    sentence-transformers does (the server refuses them before they get here)."""

    def __init__(
        self, model: BertEncoder, tokenizer: TextTokenizer, info: EngineInfo, device: torch.device
    ) -> None:
        self.model, self.tokenizer, self.info, self.device = model, tokenizer, info, device
        self.pad_id = model.config.pad_token_id
        self.adapters: AdapterManager | None = None
        """Set by `adapters.attach`: the LoRA adapters texts may be embedded with."""

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer.encode(texts)

    def embed(
        self, texts: Sequence[str], adapters: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """`adapters`: one per text (None: the base), when LoRA adapters are attached."""
        if not texts:
            raise InputError("no texts to embed")
        seqs = [_truncate(s, self.info.max_tokens) for s in self.tokenize(texts)]
        ids, mask = _pad(seqs, self.pad_id)
        names = adapters or [None] * len(texts)
        with torch.inference_mode(), adapter_rows(self.adapters, names, self.device):
            out = self.model(ids.to(self.device), mask.to(self.device))
        pooled: torch.Tensor = out.to("cpu", torch.float32)
        return pooled


def _truncate(ids: list[int], limit: int) -> list[int]:
    # Keep the closing special token ([SEP]) as the tokenizer's own truncation would.
    return ids if len(ids) <= limit else [*ids[: limit - 1], ids[-1]]


def _pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask, both [B, longest]."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask
