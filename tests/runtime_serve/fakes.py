"""Deterministic tiny engines that honour the Engine contract, for serving tests.

Both record which batches they ran and on which thread, and can be held at
a gate (to fill the queue) or slowed down (to have requests in flight).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tierwise_operator.api import Architecture, Precision, Task, TierKind
from tierwise_runtime.chat import NO_TEMPLATE, ChatMessage, ChatTemplate
from tierwise_runtime.engine import EngineInfo, SamplingParams
from tierwise_runtime.errors import InputError

log = logging.getLogger("tests.fake_engine")

VOCAB = 1000
CLS, SEP = 101, 102


class _Recorder:
    """Batch sizes, engine threads, and an optional gate and delay for every engine call."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s
        self.entered = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> None:
        """Make the next engine calls wait until `release`."""
        self.entered.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def _enter(self, size: int) -> None:
        self.threads.add(threading.current_thread().name)
        self.batches.append(size)
        log.info("fake engine: batch of %d", size)
        self.entered.set()
        if not self._gate.wait(timeout=30):
            raise TimeoutError("the test never released the fake engine")
        time.sleep(self.delay_s)


class FakeEmbeddingEngine(_Recorder):
    """Mean of per-token rows of a seeded random table, L2-normalised: a bag of words."""

    def __init__(self, *, dim: int = 8, max_tokens: int = 16, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.table = torch.randn(VOCAB, dim, generator=torch.Generator().manual_seed(0))
        self.info = EngineInfo(
            model_name="fake-embedder",
            task=Task.TEXT_EMBEDDING,
            architecture=Architecture.BERT,
            precision=Precision.FP32,
            device="cpu",
            tier=TierKind.CPU,
            max_tokens=max_tokens,
            weight_bytes=self.table.numel() * 4,
            parameters=self.table.numel(),
            embedding_dim=dim,
        )

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        self.threads.add(threading.current_thread().name)
        return [
            [CLS, *(zlib.crc32(word.encode()) % VOCAB for word in text.split()), SEP]
            for text in texts
        ]

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        self._enter(len(texts))
        rows = [self.table[torch.tensor(ids)].mean(dim=0) for ids in self.tokenize(texts)]
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


BOS, EOS = 1, 2
#: Turns written as "<role>content" lines; the assistant's turn opens with "<assistant>", so
#: the alphabet reply starts at "a" (the letter after ">" is not a letter: it restarts).
FAKE_CHAT = ChatTemplate(
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
_BYTE0 = 3  # token id of byte 0


class FakeGenerationEngine(_Recorder):
    """Byte-level tokens; each step writes the next letter of the alphabet, and EOS after `z`.

    Greedy: after "a" comes "bcd..."; with temperature > 0 it skips ahead by a
    seeded random 0-2 letters, so a seed makes sampling reproducible.
    """

    eos_token_ids = frozenset({EOS})

    def __init__(
        self,
        *,
        max_tokens: int = 64,
        delay_s: float = 0.0,
        chat_template: ChatTemplate | None = FAKE_CHAT,
    ) -> None:
        super().__init__(delay_s)
        self.steps_run = 0
        self.params: list[SamplingParams] = []
        self.chat_template = chat_template
        self.info = EngineInfo(
            model_name="fake-generator",
            task=Task.TEXT_GENERATION,
            architecture=Architecture.LLAMA,
            precision=Precision.FP32,
            device="cpu",
            tier=TierKind.CPU,
            max_tokens=max_tokens,
            weight_bytes=1234,
            parameters=617,
            kv_cache_bytes_per_token=64,
        )

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        self.threads.add(threading.current_thread().name)
        return [[BOS, *(byte + _BYTE0 for byte in text.encode())] for text in texts]

    def detokenize(self, ids: Sequence[int]) -> str:
        data = bytes(i - _BYTE0 for i in ids if i >= _BYTE0)
        return data.decode("utf-8", errors="replace")

    def chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        if self.chat_template is None:
            raise InputError(NO_TEMPLATE)
        return self.tokenize([self.chat_template.render(messages)])[0]

    def logits(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        width = max(map(len, ids))
        out = torch.zeros(len(ids), width, 256 + _BYTE0)
        for b, seq in enumerate(ids):
            for s, token in enumerate(seq):
                out[b, s, self._next(token, 0)] = 1.0
        return out

    def generate(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> Iterator[list[int | None]]:
        self._enter(len(prompts))
        self.params.extend(params)
        last = [prompt[-1] for prompt in prompts]
        made = [0] * len(prompts)
        rngs = [random.Random(p.seed) for p in params]
        while True:
            step: list[int | None] = []
            for i, p in enumerate(params):
                if last[i] == EOS or made[i] >= p.max_tokens:
                    step.append(None)
                    continue
                last[i] = self._sample(last[i], p, rngs[i])
                made[i] += 1
                step.append(last[i])
            if all(token is None for token in step):
                return
            self.steps_run += 1
            time.sleep(self.delay_s)
            yield step

    @classmethod
    def _sample(cls, token: int, params: SamplingParams, rng: random.Random) -> int:
        """The letter after `token`; sampling skips ahead by a seeded 0-2 letters."""
        return cls._next(token, rng.randint(0, 2) if params.temperature > 0 else 0)

    @staticmethod
    def _next(token: int, skip: int) -> int:
        char = token - _BYTE0
        if ord("z") - skip <= char <= ord("z"):
            return EOS
        if ord("a") <= char < ord("z"):
            return char + 1 + skip + _BYTE0
        return ord("a") + _BYTE0


@dataclass(eq=False)
class _FakeRow:
    params: SamplingParams
    last: int
    rng: random.Random
    history: int
    made: int = 0
    done: bool = False


class FakeContinuousEngine(FakeGenerationEngine):
    """The same alphabet, decoded with continuous batching: `session()` keeps a running
    batch that prompts join between steps (`batches` records each join's size)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: list[FakeSession] = []

    def session(self) -> FakeSession:
        self.sessions.append(FakeSession(self))
        return self.sessions[-1]


class FakeSession:
    def __init__(self, engine: FakeContinuousEngine) -> None:
        self.engine = engine
        self.rows: list[_FakeRow] = []
        self.largest = 0
        """The most rows it ever held at once."""

    def join(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> list[_FakeRow]:
        self.engine._enter(len(prompts))
        self.engine.params.extend(params)
        rows = [
            _FakeRow(p, ids[-1], random.Random(p.seed), len(ids))
            for ids, p in zip(prompts, params, strict=True)
        ]
        self.rows += rows
        self.largest = max(self.largest, len(self.rows))
        return rows

    def width_after(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> int:
        """As the real session counts it, with each row's history as long as its prompt
        plus what it made (the fake keeps no cache)."""
        history = [len(ids) for ids in prompts] + [r.history + r.made for r in self.rows]
        room = [p.max_tokens for p in params] + [r.params.max_tokens - r.made for r in self.rows]
        return max(history) + max(room)

    def advance(self) -> list[tuple[_FakeRow, int]]:
        out = []
        for row in self.rows:
            row.last = self.engine._sample(row.last, row.params, row.rng)
            row.made += 1
            stops = self.engine.eos_token_ids | row.params.stop_token_ids
            row.done = row.last in stops or row.made >= row.params.max_tokens
            out.append((row, row.last))
        self.engine.steps_run += 1
        time.sleep(self.engine.delay_s)
        self.rows = [row for row in self.rows if not row.done]
        return out

    def leave(self, rows: Sequence[object]) -> None:
        gone = {id(row) for row in rows}
        self.rows = [row for row in self.rows if id(row) not in gone]
