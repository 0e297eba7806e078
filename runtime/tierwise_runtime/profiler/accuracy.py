"""Quality lost against the fp32 reference: cosine for embeddings, perplexity and top-1 for text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tierwise_operator.api import AccuracyMeasure

from ..engine import EmbeddingEngine, GenerationEngine

EMBED_BATCH = 32
MAX_EVAL_TOKENS = 256
"""Texts are cut to this many tokens for the generation measures (keeps the profile finite)."""


def embeddings(engine: EmbeddingEngine, texts: Sequence[str]) -> torch.Tensor:
    """`[N, D]` float32 embeddings of every text, in batches."""
    parts = [engine.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
    return torch.cat(parts).float()


def embedding_accuracy(reference: torch.Tensor, candidate: torch.Tensor) -> AccuracyMeasure:
    if reference.shape != candidate.shape:
        raise ValueError(
            f"embedding shapes differ ({tuple(candidate.shape)} vs the reference's "
            f"{tuple(reference.shape)}): variants must embed into the same space"
        )
    cos = torch.nn.functional.cosine_similarity(reference.double(), candidate.double(), dim=1)
    mean = float(cos.mean())
    p5 = float(torch.quantile(cos, 0.05))
    return AccuracyMeasure(delta=max(0.0, 1.0 - mean), cosine_mean=mean, cosine_p5=p5)


@dataclass(frozen=True)
class TokenReference:
    """What the fp32 model predicted at every position: enough for perplexity and top-1."""

    token_ids: tuple[tuple[int, ...], ...]
    nll: tuple[torch.Tensor, ...]
    """Negative log-likelihood of each actual next token, per text."""
    argmax: tuple[torch.Tensor, ...]
    """The most likely next token at each position, per text."""

    @property
    def perplexity(self) -> float:
        return _perplexity(self.nll)


def _perplexity(nll: Sequence[torch.Tensor]) -> float:
    total = torch.cat([n.double() for n in nll])
    return math.exp(float(total.mean()))


def token_predictions(
    engine: GenerationEngine, texts: Sequence[str]
) -> tuple[tuple[tuple[int, ...], ...], list[torch.Tensor], list[torch.Tensor]]:
    """Token ids, next-token NLL and argmax for each text (one text per forward pass)."""
    ids_all, nll_all, argmax_all = [], [], []
    for full in engine.tokenize(texts):
        ids = full[:MAX_EVAL_TOKENS]
        if len(ids) < 2:
            continue  # nothing to predict
        logits = engine.logits([ids])[0, : len(ids) - 1].float()  # [S-1, V]
        targets = torch.tensor(ids[1:])
        logp = torch.log_softmax(logits, dim=-1)
        nll_all.append(-logp.gather(1, targets[:, None])[:, 0])
        argmax_all.append(logits.argmax(dim=-1))
        ids_all.append(tuple(ids))
    if not ids_all:
        raise ValueError("no eval text is long enough (two tokens) to measure generation")
    return tuple(ids_all), nll_all, argmax_all


def token_reference(engine: GenerationEngine, texts: Sequence[str]) -> TokenReference:
    ids, nll, argmax = token_predictions(engine, texts)
    return TokenReference(token_ids=ids, nll=tuple(nll), argmax=tuple(argmax))


def generation_accuracy(
    reference: TokenReference, engine: GenerationEngine, texts: Sequence[str]
) -> AccuracyMeasure:
    ids, nll, argmax = token_predictions(engine, texts)
    if ids != reference.token_ids:
        raise ValueError(
            "the candidate tokenizes the eval set differently from the reference: "
            "text-generation variants must share the primary model's tokenizer"
        )
    ppl = _perplexity(nll)
    ref_ppl = reference.perplexity
    agree = torch.cat([a == b for a, b in zip(argmax, reference.argmax, strict=True)])
    return AccuracyMeasure(
        delta=max(0.0, (ppl - ref_ppl) / ref_ppl),
        perplexity=ppl,
        top1_agreement=float(agree.double().mean()),
    )
