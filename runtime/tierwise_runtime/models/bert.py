"""BERT-style encoder producing sentence embeddings (mean pooling, L2 normalisation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..errors import CheckpointError
from . import embedding

BlockRunner = Callable[[int, nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> BertConfig:
        """From a Hugging Face `config.json` of a BERT model."""
        act = cfg.get("hidden_act", "gelu")
        if act != "gelu":
            raise CheckpointError(f"unsupported hidden_act {act!r} (only gelu)")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise CheckpointError("only absolute position embeddings are supported")
        try:
            return cls(
                vocab_size=cfg["vocab_size"],
                hidden_size=cfg["hidden_size"],
                num_layers=cfg["num_hidden_layers"],
                num_heads=cfg["num_attention_heads"],
                intermediate_size=cfg["intermediate_size"],
                max_position=cfg["max_position_embeddings"],
                type_vocab_size=cfg.get("type_vocab_size", 2),
                layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
                pad_token_id=cfg.get("pad_token_id") or 0,
            )
        except KeyError as exc:
            raise CheckpointError(f"config.json lacks {exc.args[0]!r}") from None


class Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.tokens = embedding(cfg.vocab_size, cfg.hidden_size)
        self.positions = embedding(cfg.max_position, cfg.hidden_size)
        self.token_types = embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # ids: [B, S]; every text is one segment, so token type 0 throughout.
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(pos) + self.token_types.weight[0]
        return self.norm(x)  # type: ignore[no-any-return]


class Attention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: [B, S, D]; mask: [B, 1, 1, S] True where a key is a real token
        b, s, d = x.shape
        q, k, v = (
            proj(x).view(b, s, self.heads, d // self.heads).transpose(1, 2)
            for proj in (self.q, self.k, self.v)
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o(y.transpose(1, 2).reshape(b, s, d))  # type: ignore[no-any-return]


class FeedForward(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # type: ignore[no-any-return]


class Block(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = FeedForward(cfg)
        self.mlp_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Post-norm, as in the original BERT.
        x = self.attn_norm(x + self.attn(x, mask))
        return self.mlp_norm(x + self.mlp(x))  # type: ignore[no-any-return]


def run_block(i: int, block: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Default block runner: the block's own weights (offload swaps in a streaming one)."""
    return block(x, mask)  # type: ignore[no-any-return]


class BertEncoder(nn.Module):
    """Token ids in, one L2-normalised embedding per text out."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = Embeddings(cfg)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.runner: BlockRunner = run_block

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # ids, attention_mask: [B, S] -> [B, D] float32
        x = self.embed(ids)
        mask = attention_mask.bool()[:, None, None, :]
        for i, block in enumerate(self.layers):
            x = self.runner(i, block, x, mask)
        return mean_pool(x, attention_mask)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real tokens' states, L2-normalised, in float32 (sentence-transformers' way)."""
    m = attention_mask.to(torch.float32).unsqueeze(-1)  # [B, S, 1]
    summed = (hidden.to(torch.float32) * m).sum(dim=1)
    pooled = summed / m.sum(dim=1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1)


HF_KEYS = [
    (r"^embeddings\.word_embeddings\.", "embed.tokens."),
    (r"^embeddings\.position_embeddings\.", "embed.positions."),
    (r"^embeddings\.token_type_embeddings\.", "embed.token_types."),
    (r"^embeddings\.LayerNorm\.", "embed.norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.query\.", r"layers.\1.attn.q."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.key\.", r"layers.\1.attn.k."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.value\.", r"layers.\1.attn.v."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attn.o."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attn_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp.up."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp.down."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.mlp_norm."),
]
"""Hugging Face BertModel parameter names -> ours (regex, replacement)."""

HF_IGNORED = (r"^pooler\.", r"^cls\.", r"position_ids$")
"""Checkpoint entries an encoder for embeddings does not use."""

HF_PREFIXES = ("bert.", "model.")
"""Prefixes task-specific heads put before the encoder's names."""

HF_RENAMES = ((".gamma", ".weight"), (".beta", ".bias"))
"""Old TensorFlow-era LayerNorm names."""
