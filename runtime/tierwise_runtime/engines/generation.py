"""Text generation from a Llama-style decoder: batched prefill, then one token per step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..checkpoint.tokenizer import TextTokenizer
from ..engine import EngineInfo, SamplingParams
from ..errors import InputError
from ..models.kv_cache import KVCache
from ..models.llama import Llama
from .sampling import make_generator, pick


class DecoderEngine:
    """A GenerationEngine. `generate` yields, per step, each sequence's new token; a stop token
    is yielded once (so callers can tell "stop" from "length"), then None until the end."""

    def __init__(
        self,
        model: Llama,
        tokenizer: TextTokenizer,
        info: EngineInfo,
        device: torch.device,
        *,
        eos_token_ids: frozenset[int],
        dtype: torch.dtype,
    ) -> None:
        self.model, self.tokenizer, self.info, self.device = model, tokenizer, info, device
        self.eos_token_ids = eos_token_ids
        self.dtype = dtype

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer.encode(texts)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def logits(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        self._check(ids, [0] * len(ids))
        width = max(len(s) for s in ids)
        # Right padding: causal attention never lets a real position see the pads after it.
        batch = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            batch[row, : len(seq)] = torch.tensor(list(seq))
        pos = torch.arange(width).expand(len(ids), width)
        with torch.inference_mode():
            out = self.model(batch.to(self.device), pos.to(self.device))
        logits: torch.Tensor = out.to("cpu", torch.float32)
        return logits

    def generate(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> Iterator[list[int | None]]:
        if len(prompts) != len(params):
            raise InputError("one SamplingParams per prompt is needed")
        self._check(prompts, [p.max_tokens for p in params])
        return self._decode([list(p) for p in prompts], list(params))

    def _check(self, prompts: Sequence[Sequence[int]], new_tokens: Sequence[int]) -> None:
        if not prompts or any(len(p) == 0 for p in prompts):
            raise InputError("empty prompt: at least one token is needed")
        for prompt, extra in zip(prompts, new_tokens, strict=True):
            if len(prompt) + extra > self.info.max_tokens:
                raise InputError(
                    f"prompt of {len(prompt)} tokens plus {extra} new tokens exceeds the "
                    f"model's context of {self.info.max_tokens} tokens"
                )

    def _decode(
        self, prompts: list[list[int]], params: list[SamplingParams]
    ) -> Iterator[list[int | None]]:
        state = _Batch(prompts, params, self.model, self.device, self.dtype)
        stops = [self.eos_token_ids | p.stop_token_ids for p in params]
        gens = [make_generator(p) for p in params]
        done = [p.max_tokens <= 0 for p in params]
        logits = state.prefill()
        for step in range(max(p.max_tokens for p in params)):
            if all(done):
                return
            out: list[int | None] = []
            for b, p in enumerate(params):
                if done[b]:
                    out.append(None)
                    continue
                token = pick(logits[b], p, gens[b])
                out.append(token)
                done[b] = token in stops[b] or step + 1 >= p.max_tokens
            yield out
            if not all(done):
                logits = state.step([t if t is not None else 0 for t in out])


class _Batch:
    """Left-padded prompts decoded together through one KV cache."""

    def __init__(
        self,
        prompts: list[list[int]],
        params: list[SamplingParams],
        model: Llama,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        cfg = model.config
        self.model, self.device = model, device
        self.width = max(len(p) for p in prompts)
        total = self.width + max(p.max_tokens for p in params)
        b = len(prompts)
        self.cache = KVCache(
            cfg.n_layers,
            b,
            kv_heads=cfg.n_kv_heads,
            max_len=total,
            head_dim=cfg.head_dim,
            dtype=dtype,
            device=device,
        )
        self.lengths = torch.tensor([len(p) for p in prompts])
        self.ids = torch.zeros((b, self.width), dtype=torch.long)
        self.valid = torch.zeros((b, total), dtype=torch.bool)
        for row, prompt in enumerate(prompts):
            self.ids[row, self.width - len(prompt) :] = torch.tensor(prompt)
            self.valid[row, self.width - len(prompt) : self.width] = True
        self.filled = 0

    def prefill(self) -> torch.Tensor:
        w = self.width
        pad = (w - self.lengths)[:, None]
        pos = (torch.arange(w)[None] - pad).clamp(min=0)  # [B, W]
        causal = torch.ones(w, w, dtype=torch.bool).tril()
        # Pad queries attend to themselves only, so no row of the mask is empty.
        mask = (causal & self.valid[:, None, None, :w]) | torch.eye(w, dtype=torch.bool)
        self.filled = w
        return self._run(self.ids, pos, mask, start=0)

    def step(self, tokens: list[int]) -> torch.Tensor:
        start = self.filled
        self.valid[:, start] = True
        self.filled += 1
        pos = (self.lengths + (start - self.width))[:, None]  # [B, 1]
        mask = self.valid[:, None, None, : self.filled]  # [B, 1, 1, T]
        return self._run(torch.tensor(tokens)[:, None], pos, mask, start)

    def _run(
        self, ids: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor, start: int
    ) -> torch.Tensor:
        d = self.device
        with torch.inference_mode():
            out = self.model(
                ids.to(d), pos.to(d), mask.to(d), self.cache, start=start, last_only=True
            )
        last: torch.Tensor = out[:, -1].to("cpu", torch.float32)  # [B, V]
        return last
