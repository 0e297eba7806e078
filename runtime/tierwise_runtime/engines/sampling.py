"""Picks the next token: greedy at temperature 0, else temperature and nucleus (top-p) sampling."""

from __future__ import annotations

import torch

from ..engine import SamplingParams

#: Temperatures below this are greedy: dividing logits by them overflows float32 to inf,
#: and softmax of inf is NaN (vLLM draws the same line).
GREEDY_BELOW = 1e-5


def is_greedy(params: SamplingParams) -> bool:
    """Greedy also for NaN: `not t >= x` is true for it."""
    return not params.temperature >= GREEDY_BELOW


def make_generator(params: SamplingParams) -> torch.Generator | None:
    """A CPU generator per sequence, seeded for reproducible sampling; None when greedy."""
    if is_greedy(params):
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
    if not bool(torch.isfinite(probs).all()) or not float(probs.sum()) > 0:
        raise SamplingError(
            f"cannot sample at temperature {params.temperature}, top_p {params.top_p}: "
            "the probabilities are not finite"
        )
    return int(torch.multinomial(probs, 1, generator=gen))


class SamplingError(ValueError):
    """One sequence's next token cannot be drawn (its logits or settings are degenerate)."""


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keeps the smallest set of most likely tokens whose mass reaches top_p."""
    sorted_p, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p[before >= top_p] = 0.0
    kept = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return kept / kept.sum()
