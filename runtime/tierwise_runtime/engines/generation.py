"""Text generation from a Llama-style decoder: batched prefill, then one token per step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..chat import ChatMessage
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

    def chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.tokenizer.encode_chat(messages)

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
        session = self.session()
        joining = [i for i, p in enumerate(params) if p.max_tokens > 0]
        rows = {}
        if joining:
            joined = session.join([prompts[i] for i in joining], [params[i] for i in joining])
            rows = {id(row): i for row, i in zip(joined, joining, strict=True)}
        while session.rows:
            out: list[int | None] = [None] * len(prompts)
            for row, token in session.advance():
                out[rows[id(row)]] = token
            yield out

    def session(self) -> DecodeSession:
        """A running batch that prompts can join between steps (continuous batching)."""
        return DecodeSession(self.model, self.device, self.dtype, self.eos_token_ids)


@dataclass(eq=False)
class Row:
    """One sequence of a DecodeSession: how it samples, when it ends, how far it is."""

    params: SamplingParams
    stops: frozenset[int]
    generator: torch.Generator | None
    produced: int = 0
    done: bool = False


class DecodeSession:
    """Sequences decoded together one token per step. New prompts join between steps and
    finished ones leave at once, so a short request never waits for a long one.

    The KV cache is a set of slots: each row owns one slot (a batch index of the cache) and
    keeps its tokens left-aligned in it, so joining writes only the joiners' slots and
    leaving frees a slot without touching anyone else's cache. A step runs the slots up to
    the highest one in use; a free slot among them computes a dummy token nobody reads.
    The cache grows (doubling, so a copy is rare) only when more slots or columns are needed.
    """

    def __init__(
        self, model: Llama, device: torch.device, dtype: torch.dtype, eos: frozenset[int]
    ) -> None:
        self.model, self.device, self.dtype, self.eos = model, device, dtype, eos
        self._empty()

    def _empty(self) -> None:
        self.rows: list[Row] = []
        self.slots: list[int] = []
        """The cache slot of each row."""
        self.cache: KVCache | None = None
        self.lengths = torch.zeros(0, dtype=torch.long)
        """Tokens each slot holds (0 when free); also the position of the token it feeds next."""
        self.pending: dict[int, torch.Tensor] = {}
        """Slot -> [V] logits its row's next token is picked from."""

    @property
    def kv_bytes(self) -> int:
        """Bytes the KV cache holds now."""
        return 0 if self.cache is None else self.cache.nbytes

    def join(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> list[Row]:
        """Prefill `prompts` (each with max_tokens >= 1) and add them to the running batch."""
        group = _Prefill([list(p) for p in prompts], self.model, self.device, self.dtype)
        logits = group.run()
        rows = [Row(p, self.eos | p.stop_token_ids, make_generator(p)) for p in params]
        self._place(group, logits, rows)
        return rows

    def width_after(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> int:
        """Cache columns the batch would need with `prompts` joined: the most any one row
        (its history plus the most tokens it may still write) needs. Each row alone fits the
        context, so a batch's cache stays within slots x context."""
        held = [
            int(self.lengths[s]) + r.params.max_tokens - r.produced
            for r, s in zip(self.rows, self.slots, strict=True)
        ]
        return max([*held, *(len(p) + q.max_tokens for p, q in zip(prompts, params, strict=True))])

    def advance(self) -> list[tuple[Row, int]]:
        """Pick every row's next token; rows that end leave; the others take one step."""
        picked = []
        for row, slot in zip(self.rows, self.slots, strict=True):
            token = pick(self.pending[slot], row.params, row.generator)
            row.produced += 1
            row.done = token in row.stops or row.produced >= row.params.max_tokens
            picked.append((row, token))
        self.leave([row for row, _ in picked if row.done])
        if self.rows:
            tokens = {id(row): token for row, token in picked}
            self._step([tokens[id(row)] for row in self.rows])
        return picked

    def leave(self, rows: Sequence[object]) -> None:
        """Drop `rows` (finished, or their client has gone): their slots are free again."""
        gone = {id(row) for row in rows}
        keep = [i for i, row in enumerate(self.rows) if id(row) not in gone]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self._empty()
            return
        for i, row in enumerate(self.rows):
            if id(row) in gone:
                self.lengths[self.slots[i]] = 0
                self.pending.pop(self.slots[i], None)
        self.rows = [self.rows[i] for i in keep]
        self.slots = [self.slots[i] for i in keep]

    def _place(self, group: _Prefill, logits: torch.Tensor, rows: list[Row]) -> None:
        taken = set(self.slots)
        free = [s for s in range(len(self.lengths)) if s not in taken]
        slots = free[: len(rows)]
        slots += range(len(self.lengths), len(self.lengths) + len(rows) - len(slots))
        room = max(
            [self.width_after([], []) if self.rows else 0]
            + [int(n) + r.params.max_tokens for n, r in zip(group.lengths, rows, strict=True)]
        )
        self._reserve(max(slots) + 1, room)
        assert self.cache is not None
        w = group.width
        for j, (slot, n) in enumerate(zip(slots, group.lengths.tolist(), strict=True)):
            self.cache.k[:, slot, :, :n] = group.cache.k[:, j, :, w - n :]
            self.cache.v[:, slot, :, :n] = group.cache.v[:, j, :, w - n :]
            self.lengths[slot] = n
            self.pending[slot] = logits[j]
        self.rows += rows
        self.slots += slots

    def _reserve(self, slots: int, columns: int) -> None:
        """A cache of at least `slots` x `columns`; growing copies the old one (rarely)."""
        cache = self.cache
        if cache is not None and cache.k.shape[1] >= slots and cache.max_len >= columns:
            if len(self.lengths) < slots:
                self.lengths = torch.cat([self.lengths, torch.zeros(slots - len(self.lengths),
                                                                    dtype=torch.long)])  # fmt: skip
            return
        have_slots = 0 if cache is None else cache.k.shape[1]
        have_cols = 0 if cache is None else cache.max_len
        new_slots = max(slots, 2 * have_slots) if slots > have_slots else have_slots
        new_cols = max(columns, 2 * have_cols) if columns > have_cols else have_cols
        cfg = self.model.config
        grown = KVCache(cfg.n_layers, new_slots, kv_heads=cfg.n_kv_heads, max_len=new_cols,
                        head_dim=cfg.head_dim, dtype=self.dtype, device=self.device)  # fmt: skip
        if cache is not None:
            grown.k[:, :have_slots, :, :have_cols] = cache.k
            grown.v[:, :have_slots, :, :have_cols] = cache.v
        self.cache = grown
        lengths = torch.zeros(max(slots, len(self.lengths)), dtype=torch.long)
        lengths[: len(self.lengths)] = self.lengths
        self.lengths = lengths

    def _step(self, tokens: list[int]) -> None:
        assert self.cache is not None
        b = max(self.slots) + 1
        ids = torch.zeros((b, 1), dtype=torch.long)
        ids[self.slots, 0] = torch.tensor(tokens)
        at = self.lengths[:b].clone()  # each slot's column (and position) for this token
        width = int(at.max()) + 1
        self.cache.width = width
        mask = (torch.arange(width)[None] <= at[:, None])[:, None, None, :]  # [B, 1, 1, T]
        logits = _last_logits(
            self.model, ids, at[:, None], mask,
            cache=self.cache, start=at.to(self.device), device=self.device,
        )  # fmt: skip
        for slot in self.slots:
            self.lengths[slot] += 1
            self.pending[slot] = logits[slot]


class _Prefill:
    """Left-padded prompts run through the model once, filling a cache of their width."""

    def __init__(
        self, prompts: list[list[int]], model: Llama, device: torch.device, dtype: torch.dtype
    ) -> None:
        cfg = model.config
        self.model, self.device = model, device
        self.width = max(len(p) for p in prompts)
        b = len(prompts)
        self.cache = KVCache(cfg.n_layers, b, kv_heads=cfg.n_kv_heads, max_len=self.width,
                             head_dim=cfg.head_dim, dtype=dtype, device=device)  # fmt: skip
        self.lengths = torch.tensor([len(p) for p in prompts])
        self.ids = torch.zeros((b, self.width), dtype=torch.long)
        self.valid = torch.zeros((b, self.width), dtype=torch.bool)
        for row, prompt in enumerate(prompts):
            self.ids[row, self.width - len(prompt) :] = torch.tensor(prompt)
            self.valid[row, self.width - len(prompt) :] = True

    def run(self) -> torch.Tensor:
        """[B, V] logits of each prompt's next token."""
        w = self.width
        pad = (w - self.lengths)[:, None]
        pos = (torch.arange(w)[None] - pad).clamp(min=0)  # [B, W]
        causal = torch.ones(w, w, dtype=torch.bool).tril()
        # Pad queries attend to themselves only, so no row of the mask is empty.
        mask = (causal & self.valid[:, None, None, :]) | torch.eye(w, dtype=torch.bool)
        return _last_logits(
            self.model, self.ids, pos, mask, cache=self.cache, start=0, device=self.device
        )


def _last_logits(
    model: Llama,
    ids: torch.Tensor,
    pos: torch.Tensor,
    mask: torch.Tensor,
    *,
    cache: KVCache,
    start: int | torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    d = device
    with torch.inference_mode():
        out = model(ids.to(d), pos.to(d), mask.to(d), cache, start=start, last_only=True)
    last: torch.Tensor = out[:, -1].to("cpu", torch.float32)  # [B, V]
    return last
