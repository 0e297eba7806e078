"""Llama-style decoder: RMSNorm, rotary positions, grouped-query attention, SwiGLU, KV cache."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..errors import CheckpointError
from . import embedding
from .kv_cache import KVCache

BlockRunner = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    intermediate_size: int
    max_position: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    head_dim: int = 0
    tie_embeddings: bool = False
    attention_bias: bool = False
    rope_scaling: tuple[tuple[str, float], ...] = ()
    """Llama 3 style frequency scaling (`rope_type: llama3`) as sorted key/value pairs."""
    rope_freq_factors: tuple[float, ...] = ()
    """The same scaling as llama.cpp stores it (GGUF `rope_freqs`): a divisor per frequency."""

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.dim // self.n_heads)
        if self.n_heads % self.n_kv_heads:
            raise CheckpointError("attention heads must be a multiple of key/value heads")

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> LlamaConfig:
        """From a Hugging Face `config.json` of a Llama model."""
        if cfg.get("hidden_act", "silu") != "silu":
            raise CheckpointError(f"unsupported hidden_act {cfg['hidden_act']!r} (only silu)")
        try:
            return cls(
                vocab_size=cfg["vocab_size"],
                dim=cfg["hidden_size"],
                n_layers=cfg["num_hidden_layers"],
                n_heads=cfg["num_attention_heads"],
                n_kv_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
                intermediate_size=cfg["intermediate_size"],
                max_position=cfg.get("max_position_embeddings", 2048),
                norm_eps=cfg.get("rms_norm_eps", 1e-6),
                rope_theta=_rope_theta(cfg),
                head_dim=cfg.get("head_dim") or 0,
                tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                attention_bias=bool(cfg.get("attention_bias", False)),
                rope_scaling=_rope_scaling(cfg),
            )
        except KeyError as exc:
            raise CheckpointError(f"config.json lacks {exc.args[0]!r}") from None


def _rope_theta(cfg: dict[str, Any]) -> float:
    params = cfg.get("rope_parameters") or {}
    return float(cfg.get("rope_theta") or params.get("rope_theta") or 10000.0)


def _rope_scaling(cfg: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    scaling = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return ()
    if kind != "llama3":
        raise CheckpointError(f"unsupported rope scaling {kind!r} (default or llama3)")
    keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
    return tuple((k, float(scaling[k])) for k in keys)


def inverse_frequencies(cfg: LlamaConfig) -> torch.Tensor:
    """RoPE inverse frequencies [head_dim / 2], with Llama 3 scaling when configured."""
    hd = cfg.head_dim
    exponents = torch.arange(0, hd, 2, dtype=torch.int64, device="cpu").float() / hd
    inv = 1.0 / cfg.rope_theta**exponents
    if cfg.rope_freq_factors:
        return inv / torch.tensor(cfg.rope_freq_factors, dtype=torch.float32, device="cpu")
    if not cfg.rope_scaling:
        return inv
    s = dict(cfg.rope_scaling)
    old = s["original_max_position_embeddings"]
    low_wl, high_wl = old / s["low_freq_factor"], old / s["high_freq_factor"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wl, inv / s["factor"], inv)
    smooth = (old / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
    mid = (1 - smooth) * scaled / s["factor"] + smooth * scaled
    is_mid = (wavelen >= high_wl) & (wavelen <= low_wl)
    return torch.where(is_mid, mid, scaled)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalised in float32, as the reference implementation does.
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        bias = cfg.attention_bias
        self.wq = nn.Linear(cfg.dim, self.n_heads * self.hd, bias=bias)
        self.wk = nn.Linear(cfg.dim, self.n_kv * self.hd, bias=bias)
        self.wv = nn.Linear(cfg.dim, self.n_kv * self.hd, bias=bias)
        self.wo = nn.Linear(self.n_heads * self.hd, cfg.dim, bias=bias)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        cache: tuple[KVCache, int, int | torch.Tensor] | None,
    ) -> torch.Tensor:
        # x: [B, S, D]; rope: cos, sin [B, 1, S, hd]; mask: [B, 1, S, T] or None (causal)
        b, s, _ = x.shape
        q = self.wq(x).view(b, s, self.n_heads, self.hd).transpose(1, 2)
        k = self.wk(x).view(b, s, self.n_kv, self.hd).transpose(1, 2)
        v = self.wv(x).view(b, s, self.n_kv, self.hd).transpose(1, 2)
        cos, sin = rope
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            kv, layer, start = cache
            k, v = kv.update(layer, start, k, v)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=self.n_kv != self.n_heads
        )
        return self.wo(y.transpose(1, 2).reshape(b, s, -1))  # type: ignore[no-any-return]


class FeedForward(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.dim, cfg.intermediate_size, bias=False)
        self.up = nn.Linear(cfg.dim, cfg.intermediate_size, bias=False)
        self.down = nn.Linear(cfg.intermediate_size, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # type: ignore[no-any-return]


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = FeedForward(cfg)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        cache: tuple[KVCache, int, int | torch.Tensor] | None,
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rope, mask, cache)
        return x + self.mlp(self.mlp_norm(x))  # type: ignore[no-any-return]


def run_block(i: int, block: nn.Module, *args: Any) -> torch.Tensor:
    """Default block runner: the block's own weights (offload swaps in a streaming one)."""
    return block(*args)  # type: ignore[no-any-return]


class Llama(nn.Module):
    """Token ids in, next-token logits out; attends through an optional KV cache."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embeddings = embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        # A tied head reads the embedding matrix, so it is not a Linear that quantization
        # could replace with a second copy.
        self.output = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, False)
        self.runner: BlockRunner = run_block
        self._inv_freq = inverse_frequencies(cfg)

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        # positions: [B, S] -> cos, sin: [B, 1, S, hd], computed in float32
        if self._inv_freq.device != positions.device:
            self._inv_freq = self._inv_freq.to(positions.device)
        freqs = positions[..., None].to(torch.float32) * self._inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        *,
        start: int | torch.Tensor = 0,
        last_only: bool = False,
    ) -> torch.Tensor:
        """ids, positions: [B, S]; mask: [B, 1, S, T] or None for plain causal attention;
        cache slots [start, start + S) receive this call's keys. -> logits [B, S or 1, V]."""
        x = self.tok_embeddings(ids)
        cos, sin = self.rope(positions, x.dtype)
        for i, block in enumerate(self.layers):
            layer_cache = None if cache is None else (cache, i, start)
            x = self.runner(i, block, x, (cos, sin), mask, layer_cache)
        if last_only:
            x = x[:, -1:]
        x = self.norm(x)
        if self.output is None:
            return F.linear(x, self.tok_embeddings.weight)
        return self.output(x)  # type: ignore[no-any-return]


HF_KEYS = [
    (r"^model\.embed_tokens\.", "tok_embeddings."),
    (r"^model\.layers\.(\d+)\.self_attn\.q_proj\.", r"layers.\1.attn.wq."),
    (r"^model\.layers\.(\d+)\.self_attn\.k_proj\.", r"layers.\1.attn.wk."),
    (r"^model\.layers\.(\d+)\.self_attn\.v_proj\.", r"layers.\1.attn.wv."),
    (r"^model\.layers\.(\d+)\.self_attn\.o_proj\.", r"layers.\1.attn.wo."),
    (r"^model\.layers\.(\d+)\.mlp\.gate_proj\.", r"layers.\1.mlp.gate."),
    (r"^model\.layers\.(\d+)\.mlp\.up_proj\.", r"layers.\1.mlp.up."),
    (r"^model\.layers\.(\d+)\.mlp\.down_proj\.", r"layers.\1.mlp.down."),
    (r"^model\.layers\.(\d+)\.input_layernorm\.", r"layers.\1.attn_norm."),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.", r"layers.\1.mlp_norm."),
    (r"^model\.norm\.", "norm."),
    (r"^lm_head\.", "output."),
]
"""Hugging Face LlamaForCausalLM parameter names -> ours (regex, replacement)."""

HF_IGNORED = (r"rotary_emb\.inv_freq$",)

GGUF_KEYS = [
    (r"^token_embd\.", "tok_embeddings."),
    (r"^blk\.(\d+)\.attn_q\.", r"layers.\1.attn.wq."),
    (r"^blk\.(\d+)\.attn_k\.", r"layers.\1.attn.wk."),
    (r"^blk\.(\d+)\.attn_v\.", r"layers.\1.attn.wv."),
    (r"^blk\.(\d+)\.attn_output\.", r"layers.\1.attn.wo."),
    (r"^blk\.(\d+)\.ffn_gate\.", r"layers.\1.mlp.gate."),
    (r"^blk\.(\d+)\.ffn_up\.", r"layers.\1.mlp.up."),
    (r"^blk\.(\d+)\.ffn_down\.", r"layers.\1.mlp.down."),
    (r"^blk\.(\d+)\.attn_norm\.", r"layers.\1.attn_norm."),
    (r"^blk\.(\d+)\.ffn_norm\.", r"layers.\1.mlp_norm."),
    (r"^output_norm\.", "norm."),
    (r"^output\.", "output."),
]
"""llama.cpp GGUF tensor names -> ours (regex, replacement)."""

GGUF_IGNORED = (r"^rope_freqs\.",)  # read into LlamaConfig.rope_freq_factors
