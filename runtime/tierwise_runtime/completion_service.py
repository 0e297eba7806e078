"""Completions: prompts of concurrent requests decoded together, text streamed back per request.

Batching is static per group: the prompts collected into one batch decode
together until every one of them has finished (the Engine contract takes its
prompts up front, so new prompts wait for the next group). A group stops
early once every sequence in it has ended, hit a stop string or lost its
client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .batching import BatchLimits, DynamicBatcher, EngineWorker
from .engine import GenerationEngine, SamplingParams
from .input_checks import check_lengths
from .textstream import TextStream

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class TextDelta:
    """More text of prompt `index`."""

    index: int
    text: str


@dataclass(frozen=True)
class Finished:
    """Prompt `index` has ended: `stop` (end token or stop string) or `length` (max_tokens)."""

    index: int
    reason: FinishReason
    completion_tokens: int


CompletionEvent = TextDelta | Finished


@dataclass(frozen=True)
class _Failed:
    exc: BaseException


@dataclass(eq=False)
class _Prompt:
    index: int
    ids: list[int]
    params: SamplingParams
    stop: tuple[str, ...]
    post: Callable[[CompletionEvent | _Failed], None]
    """Thread-safe: hands an event to the request's queue on the event loop."""
    cancelled: bool = field(default=False)
    """Set from the event loop when the client has gone; read by the engine thread."""

    def abandoned(self) -> bool:
        return self.cancelled

    def fail(self, exc: BaseException) -> None:
        self.post(_Failed(exc))


class CompletionStream:
    """The events of one request's prompts, in the order they are produced."""

    def __init__(self, prompts: list[_Prompt], queue: asyncio.Queue[CompletionEvent | _Failed]):
        self._prompts = prompts
        self._queue = queue
        self._open = len(prompts)
        self.prompt_tokens = sum(len(prompt.ids) for prompt in prompts)

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> CompletionEvent:
        if self._open == 0:
            raise StopAsyncIteration
        event = await self._queue.get()
        if isinstance(event, _Failed):
            self._open = 0
            raise event.exc
        if isinstance(event, Finished):
            self._open -= 1
        return event

    def cancel(self) -> None:
        """Stop decoding this request's prompts (the client has gone); harmless once finished."""
        for prompt in self._prompts:
            prompt.cancelled = True


class CompletionService:
    """Decodes prompts for many concurrent requests in groups on the engine thread."""

    def __init__(
        self,
        engine: GenerationEngine,
        worker: EngineWorker,
        limits: BatchLimits,
        *,
        on_batch: Callable[[int], None] = lambda size: None,
        on_depth: Callable[[int], None] = lambda depth: None,
    ) -> None:
        self._engine = engine
        self._worker = worker
        self.batcher = DynamicBatcher[_Prompt](
            limits, self._execute, on_batch=on_batch, on_depth=on_depth
        )

    async def submit(
        self, prompts: Sequence[str], params: SamplingParams, stop: Sequence[str] = ()
    ) -> CompletionStream:
        """Queue the prompts; raises QueueFull when the queue is full, InputTooLong."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[CompletionEvent | _Failed] = asyncio.Queue()
        post = functools.partial(_post_threadsafe, loop, queue)
        with self.batcher.reserve(len(prompts)) as slots:
            ids = await self._worker.call(self._engine.tokenize, prompts)
            check_lengths(ids, self._engine.info.max_tokens, completion=params.max_tokens)
            items = [
                _Prompt(index, list(tokens), params, tuple(stop), post)
                for index, tokens in enumerate(ids)
            ]
            slots.submit(items)
        return CompletionStream(items, queue)

    async def _execute(self, batch: list[_Prompt]) -> None:
        await self._worker.call(decode_group, self._engine, batch)

    def warm_up(self) -> None:
        """One short greedy decode on the engine thread, before serving."""
        ids = self._engine.tokenize(["tierwise warms up the model"])
        steps = self._engine.generate(ids, [SamplingParams(max_tokens=2, temperature=0.0)])
        for _ in steps:
            pass


def _post_threadsafe(
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[CompletionEvent | _Failed],
    event: CompletionEvent | _Failed,
) -> None:
    # A closed loop means nobody waits for the event any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(queue.put_nowait, event)


class _Sequence:
    """The engine-thread side of one prompt: its text, token count and end."""

    def __init__(self, prompt: _Prompt, detokenize: Callable[[Sequence[int]], str]) -> None:
        self.prompt = prompt
        self.text = TextStream(detokenize, prompt.stop)
        self.tokens = 0
        self.done = False

    def advance(self, token: int | None, end_ids: frozenset[int]) -> None:
        if self.done:
            return
        if self.prompt.cancelled:
            self.done = True
        elif token is None:
            self.finish()
        elif token in end_ids:
            self.tokens += 1
            self.finish("stop")
        else:
            self.tokens += 1
            self._send(self.text.push(token))
            if self.text.stopped or self.tokens >= self.prompt.params.max_tokens:
                self.finish()

    def finish(self, reason: FinishReason | None = None) -> None:
        if reason is None:
            at_limit = self.tokens >= self.prompt.params.max_tokens
            reason = "length" if at_limit and not self.text.stopped else "stop"
        self._send(self.text.flush())
        self.prompt.post(Finished(self.prompt.index, reason, self.tokens))
        self.done = True

    def _send(self, text: str) -> None:
        if text:
            self.prompt.post(TextDelta(self.prompt.index, text))


def decode_group(engine: GenerationEngine, batch: list[_Prompt]) -> None:
    """Decode one group to the end on the engine thread, posting text as it comes."""
    sequences = [_Sequence(prompt, engine.detokenize) for prompt in batch]
    end_ids = [engine.eos_token_ids | prompt.params.stop_token_ids for prompt in batch]
    steps = engine.generate([p.ids for p in batch], [p.params for p in batch])
    try:
        for step in steps:
            for sequence, token, ends in zip(sequences, step, end_ids, strict=True):
                sequence.advance(token, ends)
            if all(sequence.done for sequence in sequences):
                break
    finally:
        if isinstance(steps, Generator):
            steps.close()
    for sequence in sequences:
        if not sequence.done:
            sequence.finish()
