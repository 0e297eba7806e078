"""Text generation from a Llama-style decoder: batched prefill, then one token per step."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..adapters.lora_linear import BASE_SLOT
from ..adapters.manager import AdapterManager, adapter_rows
from ..chat import ChatMessage
from ..checkpoint.tokenizer import TextTokenizer
from ..engine import EngineInfo, SamplingParams
from ..errors import InputError
from ..models.kv_cache import KVCache
from ..models.llama import Llama
from .sampling import make_generator, pick

log = logging.getLogger(__name__)


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
        self.adapters: AdapterManager | None = None
        """Set by `adapters.attach`: the LoRA adapters rows may decode with."""

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer.encode(texts)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.tokenizer.encode_chat(messages)

    def logits(
        self, ids: Sequence[Sequence[int]], adapters: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """`adapters`: one per row (None: the base), when LoRA adapters are attached."""
        self._check(ids, [0] * len(ids))
        width = max(len(s) for s in ids)
        # Right padding: causal attention never lets a real position see the pads after it.
        batch = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            batch[row, : len(seq)] = torch.tensor(list(seq))
        pos = torch.arange(width).expand(len(ids), width)
        with (
            torch.inference_mode(),
            adapter_rows(self.adapters, adapters or [None] * len(ids), self.device),
        ):
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
                out[rows[id(row)]] = None if row.error is not None else token
            yield out

    def session(self) -> DecodeSession:
        """A running batch that prompts can join between steps (continuous batching)."""
        session = DecodeSession(self.model, self.device, self.dtype, self.eos_token_ids)
        session.adapters = self.adapters
        return session


@dataclass(eq=False)
class Row:
    """One sequence of a DecodeSession: how it samples, when it ends, how far it is."""

    params: SamplingParams
    stops: frozenset[int]
    generator: torch.Generator | None
    produced: int = 0
    done: bool = False
    error: Exception | None = None
    """Why this row could not go on (its sampling failed); it has left, the others go on."""


class DecodeSession:
    """Sequences decoded together one token per step. New prompts join between steps and
    finished ones leave at once, so a short request never waits for a long one.

    The rows share one KV cache whose columns are time slots: each step every row writes
    its key and value at column `filled`; a row's earlier tokens sit right-aligned before
    it and `valid` masks every column that is not its own. Joining re-aligns the two
    caches on their last column; leaving drops the row and the columns no row still uses.
    """

    def __init__(
        self, model: Llama, device: torch.device, dtype: torch.dtype, eos: frozenset[int]
    ) -> None:
        self.model, self.device, self.dtype, self.eos = model, device, dtype, eos
        self._empty()

    adapters: AdapterManager | None = None
    """Row slots come from here when adapters are attached."""

    def _empty(self) -> None:
        self.slots: list[int] = []
        """Each row's adapter slot (pinned until it leaves)."""
        self.rows: list[Row] = []
        self.cache: KVCache | None = None
        self.valid = torch.zeros((0, 0), dtype=torch.bool)
        self.next_pos = torch.zeros(0, dtype=torch.long)
        """Each row's position for the token it feeds next."""
        self.pending = torch.zeros(0, 0)
        """[B, V] logits each row's next token is picked from."""
        self.filled = 0

    def join(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> list[Row]:
        """Prefill `prompts` (each with max_tokens >= 1) and add them to the running batch."""
        group = _Prefill([list(p) for p in prompts], self.model, self.device, self.dtype)
        slots = self._acquire(params)
        try:
            with self._use(slots):
                logits = group.run()
        except BaseException:
            self._release(slots)
            raise
        rows = [Row(p, self.eos | p.stop_token_ids, make_generator(p)) for p in params]
        self._merge(group, logits, rows)
        self.slots += slots
        return rows

    def adapters_fit(self, params: Sequence[SamplingParams]) -> bool:
        """Whether rows for `params` could get adapter slots beside the running ones."""
        if self.adapters is None:
            return True
        return self.adapters.fits([p.adapter for p in params])

    def _acquire(self, params: Sequence[SamplingParams]) -> list[int]:
        names = [p.adapter for p in params]
        if self.adapters is None:
            if any(name is not None for name in names):
                raise InputError("this model has no adapters attached")
            return [BASE_SLOT] * len(names)
        return self.adapters.acquire(names)

    def _release(self, slots: Sequence[int]) -> None:
        if self.adapters is not None:
            self.adapters.release(slots)

    def _use(self, slots: Sequence[int]) -> contextlib.AbstractContextManager[None]:
        if self.adapters is None:
            return contextlib.nullcontext()
        return self.adapters.rows.use(slots, self.device)

    def width_after(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> int:
        """Cache columns the batch would need with `prompts` joined: the longest history
        plus the most tokens any row may still write (each row alone fits the context;
        a batch keeps to it too, so its cache stays within batch x context)."""
        end = max([self.filled, *(len(p) for p in prompts)])
        room = [r.params.max_tokens - r.produced for r in self.rows]
        return end + max([*room, *(p.max_tokens for p in params)])

    def advance(self) -> list[tuple[Row, int]]:
        """Pick every row's next token; rows that end leave; the others take one step.
        A row whose sampling fails gets token -1, its `error` set, and leaves."""
        picked = []
        for row, logits in zip(self.rows, self.pending, strict=True):
            try:
                token = pick(logits, row.params, row.generator)
            except Exception as exc:  # one sequence's poison never reaches its neighbours
                log.warning("a sequence left the batch: sampling failed: %s", exc)
                row.error, row.done = exc, True
                picked.append((row, -1))
                continue
            row.produced += 1
            row.done = token in row.stops or row.produced >= row.params.max_tokens
            picked.append((row, token))
        self.leave([row for row, _ in picked if row.done])
        if self.rows:
            self._step([token for row, token in picked if not row.done])
        return picked

    def leave(self, rows: Sequence[object]) -> None:
        """Drop `rows` (finished, or their client has gone) and the columns nobody uses."""
        gone = {id(row) for row in rows}
        keep = [i for i, row in enumerate(self.rows) if id(row) not in gone]
        if len(keep) == len(self.rows):
            return
        self._release([s for s, row in zip(self.slots, self.rows, strict=True) if id(row) in gone])
        if not keep or self.cache is None:
            self._empty()
            return
        index = torch.tensor(keep)
        valid = self.valid[index]
        used = valid[:, : self.filled].any(dim=0).nonzero()
        first = int(used[0]) if len(used) else self.filled
        on = index.to(self.cache.k.device)
        self.cache = KVCache.of(
            self.cache.k.index_select(1, on)[:, :, :, first:].contiguous(),
            self.cache.v.index_select(1, on)[:, :, :, first:].contiguous(),
        )
        self.valid = valid[:, first:].contiguous()
        self.filled -= first
        self.next_pos = self.next_pos[index]
        self.pending = self.pending[index]
        self.rows = [self.rows[i] for i in keep]
        self.slots = [self.slots[i] for i in keep]

    def _merge(self, group: _Prefill, logits: torch.Tensor, rows: list[Row]) -> None:
        cfg = self.model.config
        everyone = [*self.rows, *rows]
        end = max(self.filled, group.width)
        room = end + max(r.params.max_tokens - r.produced for r in everyone)
        cache = KVCache(cfg.n_layers, len(everyone), kv_heads=cfg.n_kv_heads, max_len=room,
                        head_dim=cfg.head_dim, dtype=self.dtype, device=self.device)  # fmt: skip
        valid = torch.zeros((len(everyone), room), dtype=torch.bool)
        old = len(self.rows)
        if self.cache is not None and old:
            cols = slice(end - self.filled, end)
            cache.k[:, :old, :, cols] = self.cache.k[:, :, :, : self.filled]
            cache.v[:, :old, :, cols] = self.cache.v[:, :, :, : self.filled]
            valid[:old, cols] = self.valid[:, : self.filled]
        cols = slice(end - group.width, end)
        cache.k[:, old:, :, cols] = group.cache.k
        cache.v[:, old:, :, cols] = group.cache.v
        valid[old:, cols] = group.valid
        self.cache, self.valid, self.filled = cache, valid, end
        self.next_pos = torch.cat([self.next_pos, group.lengths])
        self.pending = logits if not old else torch.cat([self.pending, logits])
        self.rows = everyone

    def _step(self, tokens: list[int]) -> None:
        assert self.cache is not None
        start = self.filled
        self.valid[:, start] = True
        self.filled += 1
        mask = self.valid[:, None, None, : self.filled]  # [B, 1, 1, T]
        ids = torch.tensor(tokens)[:, None]
        with self._use(self.slots):
            self.pending = _last_logits(
                self.model, ids, self.next_pos[:, None], mask,
                cache=self.cache, start=start, device=self.device,
            )  # fmt: skip
        self.next_pos = self.next_pos + 1


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
    start: int,
    device: torch.device,
) -> torch.Tensor:
    d = device
    with torch.inference_mode():
        out = model(ids.to(d), pos.to(d), mask.to(d), cache, start=start, last_only=True)
    last: torch.Tensor = out[:, -1].to("cpu", torch.float32)  # [B, V]
    return last
