"""Picks the next token: greedy at temperature 0, else temperature and nucleus (top-p) sampling."""

from __future__ import annotations

import torch

from ..engine import SamplingParams


def make_generator(params: SamplingParams) -> torch.Generator | None:
    """A CPU generator per sequence, seeded for reproducible sampling; None when greedy."""
    if params.temperature <= 0:
        return None
    gen = torch.Generator(device="cpu")
    if params.seed is None:
        gen.seed()
    else:
        gen.manual_seed(params.seed)
    return gen


def pick(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> int:
    """One token id from float32 CPU logits [V]."""
    if gen is None:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        probs = _nucleus(probs, params.top_p)
    return int(torch.multinomial(probs, 1, generator=gen))


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keeps the smallest set of most likely tokens whose mass reaches top_p."""
    sorted_p, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p[before >= top_p] = 0.0
    kept = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return kept / kept.sum()
