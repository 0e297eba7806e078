"""Completions: prompts of concurrent requests decoded together, text streamed back per request.

With an engine that keeps a running batch (`ContinuousEngine`: the bundled
decoder) batching is continuous: prompts join between decode steps while the
batch has room, and each sequence leaves as soon as it ends, hits a stop
string or loses its client, so a short request never waits for a long one.
Other engines decode static groups: the prompts collected into one batch
decode together until every one of them has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from .adapters.manager import prefetch_adapter
from .batching import BatchLimits, DynamicBatcher, EngineWorker
from .chat import NO_TEMPLATE, ChatMessage
from .engine import ChatEngine, GenerationEngine, SamplingParams
from .errors import InputError
from .input_checks import check_lengths
from .textstream import TextStream

log = logging.getLogger(__name__)

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


class DecodingRow(Protocol):
    """One sequence of a running batch."""

    done: bool


class RunningBatch(Protocol):
    """Sequences decoded one step at a time; new ones join and old ones leave between steps."""

    rows: Sequence[DecodingRow]

    def join(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> Sequence[DecodingRow]: ...

    def advance(self) -> Sequence[tuple[DecodingRow, int]]:
        """Each row's next token; rows done by it (stop token, max_tokens) have left."""
        ...

    def width_after(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> int:
        """Cache columns (tokens of context) the batch would need with `prompts` joined."""
        ...

    def leave(self, rows: Sequence[object]) -> None: ...


@runtime_checkable
class ContinuousEngine(Protocol):
    """A GenerationEngine that can keep a running batch (continuous batching)."""

    def session(self) -> RunningBatch: ...


class CompletionService:
    """Decodes prompts for many concurrent requests on the engine thread."""

    def __init__(
        self,
        engine: GenerationEngine,
        worker: EngineWorker,
        limits: BatchLimits,
        *,
        on_batch: Callable[[int], None] = lambda size: None,
        on_depth: Callable[[int], None] = lambda depth: None,
        on_running: Callable[[int], None] = lambda sequences: None,
    ) -> None:
        self._engine = engine
        self._worker = worker
        self._running: _Running | None = None
        room = None
        if isinstance(engine, ContinuousEngine):
            self._running = _Running(engine, engine.session, on_running)
            room = self._room
        self.batcher = DynamicBatcher[_Prompt](
            limits, self._execute, on_batch=on_batch, on_depth=on_depth, room=room
        )

    async def submit(
        self, prompts: Sequence[str], params: SamplingParams, stop: Sequence[str] = ()
    ) -> CompletionStream:
        """Queue the prompts; raises QueueFull when the queue is full, InputTooLong."""
        return await self._submit(
            len(prompts), functools.partial(self._engine.tokenize, prompts), params, stop
        )

    async def submit_chat(
        self, messages: Sequence[ChatMessage], params: SamplingParams, stop: Sequence[str] = ()
    ) -> CompletionStream:
        """Queue the assistant's next turn; raises InputError (no chat template, or it
        refuses the messages) besides submit's errors."""
        engine = self._engine
        if not isinstance(engine, ChatEngine):
            raise InputError(NO_TEMPLATE)
        return await self._submit(1, lambda: [engine.chat_ids(messages)], params, stop)

    async def _submit(
        self,
        count: int,
        tokenize: Callable[[], list[list[int]]],
        params: SamplingParams,
        stop: Sequence[str],
    ) -> CompletionStream:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[CompletionEvent | _Failed] = asyncio.Queue()
        post = functools.partial(_post_threadsafe, loop, queue)
        with self.batcher.reserve(count) as slots:
            ids = await self._worker.call(tokenize)
            check_lengths(ids, self._engine.info.max_tokens, completion=params.max_tokens)
            if params.adapter is not None:  # a cold adapter loads now, and fails here
                await self._worker.call(prefetch_adapter, self._engine, params.adapter)
            items = [
                _Prompt(index, list(tokens), params, tuple(stop), post)
                for index, tokens in enumerate(ids)
            ]
            slots.submit(items)
        return CompletionStream(items, queue)

    def _room(self) -> int:
        running = self._running.size if self._running is not None else 0
        return self.batcher.limits.max_batch - running

    async def _execute(self, batch: list[_Prompt]) -> None:
        running = self._running
        if running is None:
            await self._worker.call(decode_group, self._engine, batch)
            return
        if batch:
            try:
                await self._worker.call(running.join, batch)
            except Exception as exc:
                log.exception("the running batch failed taking %d prompts", len(batch))
                running.fail_all(exc)
                return
        await self._decode(running)

    async def _decode(self, running: _Running) -> None:
        """Step the running batch until it empties, or until prompts wait and it has room."""
        try:
            while running.size:
                if self.batcher.queued and self._room() > 0:
                    return  # the batcher hands them to _execute, which continues from here
                await self._worker.call(running.step)
        except asyncio.CancelledError:
            running.fail_all(RuntimeError("the server is shutting down"), reset=False)
            raise
        except Exception as exc:
            log.exception("the running batch of %d sequences failed", len(running.live))
            running.fail_all(exc)

    def abort(self, exc: BaseException) -> None:
        """End every queued and decoding prompt with `exc` (on the event loop; the engine
        thread sees them cancelled and drops them at its next step)."""
        self.batcher.fail_queued(exc)
        if self._running is not None:
            self._running.abort(exc)

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


class _Running:
    """The engine-thread side of continuous batching: one running batch and its sequences."""

    def __init__(
        self,
        engine: GenerationEngine,
        new_session: Callable[[], RunningBatch],
        on_running: Callable[[int], None],
    ) -> None:
        self._engine = engine
        self._new_session = new_session
        self._session = new_session()
        self._on_running = on_running
        self.live: dict[int, tuple[DecodingRow, _Sequence, frozenset[int]]] = {}
        """By id of the row: the row, its sequence and the ids that end it."""
        self.deferred: list[_Prompt] = []
        """Prompts taken from the queue that would stretch the batch's cache past the
        model's context; they join, oldest first, as soon as they fit."""

    @property
    def size(self) -> int:
        """Sequences decoding or about to."""
        return len(self.live) + len(self.deferred)

    def join(self, batch: list[_Prompt]) -> None:
        for prompt in [p for p in batch if p.params.max_tokens < 1]:
            _Sequence(prompt, self._engine.detokenize).finish("length")
        self.deferred += [p for p in batch if p.params.max_tokens >= 1]
        self._admit()

    def _admit(self) -> None:
        """Join the deferred prompts that fit, oldest first (a long one is never starved:
        an empty batch takes any prompt, which fits the context on its own)."""
        self.deferred = [p for p in self.deferred if not p.cancelled]
        context = self._engine.info.max_tokens
        fits: list[_Prompt] = []
        for prompt in self.deferred:
            group = [*fits, prompt]
            ids, params = [p.ids for p in group], [p.params for p in group]
            too_wide = self._session.width_after(ids, params) > context
            if (too_wide or not _adapters_fit(self._session, params)) and (fits or self.live):
                break
            fits = group
        if not fits:
            return
        self.deferred = self.deferred[len(fits) :]
        try:
            rows = self._session.join([p.ids for p in fits], [p.params for p in fits])
        except Exception as exc:
            # These prompts cannot start (out of memory, say); the running ones go on.
            log.exception("%d prompts could not join the running batch", len(fits))
            for prompt in fits:
                prompt.fail(exc)
            return
        for row, prompt in zip(rows, fits, strict=True):
            ends = self._engine.eos_token_ids | prompt.params.stop_token_ids
            self.live[id(row)] = (row, _Sequence(prompt, self._engine.detokenize), ends)
        self._on_running(len(self.live))

    def step(self) -> None:
        """One token for every sequence; those that end leave the batch."""
        self._admit()
        for row, token in self._session.advance():
            _, seq, ends = self.live[id(row)]
            error = getattr(row, "error", None)  # engines that isolate a row's failure
            if isinstance(error, Exception):
                seq.prompt.fail(error)
                seq.done = True
            else:
                seq.advance(token, ends)
        ended = [(row, seq) for row, seq, _ in self.live.values() if row.done or seq.done]
        # Rows that a stop string or a departed client ended are still in the batch.
        self._session.leave([row for row, _ in ended if not row.done])
        for row, seq in ended:
            if not seq.done:
                seq.finish()
            del self.live[id(row)]
        self._on_running(len(self.live))

    def abort(self, exc: BaseException) -> None:
        """Fail every sequence from the event loop while the engine thread may step: only
        flags and posts, which the engine thread reads or makes itself."""
        prompts = [seq.prompt for _, seq, _ in list(self.live.values())] + list(self.deferred)
        for prompt in prompts:
            if not prompt.cancelled:
                prompt.cancelled = True
                prompt.fail(exc)

    def fail_all(self, exc: BaseException, *, reset: bool = True) -> None:
        """The running batch is lost: tell every request, and start afresh when `reset`
        (only between steps: a step may still run on the engine thread while shutting down)."""
        for _, seq, _ in list(self.live.values()):
            seq.prompt.fail(exc)
        for prompt in list(self.deferred):
            prompt.fail(exc)
        if reset:
            self.live.clear()
            self.deferred.clear()
            self._session = self._new_session()
            self._on_running(0)


def _adapters_fit(session: RunningBatch, params: Sequence[SamplingParams]) -> bool:
    """Whether rows for `params` find adapter slots beside the running rows (a session
    without adapters always has room)."""
    fits = getattr(session, "adapters_fit", None)
    return True if fits is None else bool(fits(params))


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
