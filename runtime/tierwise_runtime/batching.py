"""Dynamic batching: items of concurrent requests join bounded batches run on the engine thread.

A request first reserves queue slots for its items (texts or prompts); when
the queue cannot take them all it is refused at once (`QueueFull`), so memory
is bounded by `max_queue` waiting items plus one running batch. The collector
takes the oldest item, then waits at most `max_wait_s` from that item's
arrival for others, up to `max_batch`, and runs the batch to completion before
forming the next one. Items whose client went away are dropped unrun.

With a `room` callback (continuous batching: the executor keeps a running batch
that new items join) a batch is capped at the room the running one has left; while
something runs, items queued are taken at once, without waiting for stragglers,
and the executor is called even with none, so the running batch goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, ParamSpec, Protocol, Self, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class QueueFull(Exception):
    """The bounded queue cannot take a request now; the client should retry later."""

    def __init__(self, requested: int, waiting: int, limit: int) -> None:
        super().__init__(
            f"the queue is full ({waiting} of {limit} items waiting, {requested} more asked)"
        )
        self.requested = requested


@dataclass(frozen=True)
class BatchLimits:
    """Bounds of one batcher."""

    max_batch: int = 32
    """Most items in one engine call."""
    max_wait_s: float = 0.005
    """Longest an item waits for others to join its batch."""
    max_queue: int = 256
    """Most items admitted and not yet running; more are refused."""

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        if self.max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")


@dataclass(frozen=True)
class RunningCall:
    """The engine call running now: which one (a count), what it runs, for how long."""

    number: int
    name: str
    seconds: float


class EngineWorker:
    """The one thread every engine call runs on, in order: engines are not thread-safe."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tierwise-engine")
        self._busy = False
        self._started: float | None = None
        self._name = ""
        self._calls = 0

    @property
    def busy(self) -> bool:
        """An engine call is running now."""
        return self._busy

    def running(self) -> RunningCall | None:
        """The call running now, if any."""
        started = self._started
        if started is None:
            return None
        return RunningCall(self._calls, self._name, time.monotonic() - started)

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._run, functools.partial(fn, *args, **kwargs)
        )

    def close(self) -> None:
        """Drop calls not yet started; wait for the running one only if none is running."""
        self._pool.shutdown(wait=not self._busy, cancel_futures=True)

    def _run(self, call: Callable[[], R]) -> R:
        self._busy = True
        inner = call.func if isinstance(call, functools.partial) else call
        self._name = getattr(inner, "__qualname__", type(inner).__name__)
        self._calls += 1
        self._started = time.monotonic()
        try:
            return call()
        finally:
            self._started = None
            self._busy = False


class BatchItem(Protocol):
    """One text or prompt: knows whether its request is gone and how to report a failure."""

    def abandoned(self) -> bool: ...

    def fail(self, exc: BaseException) -> None: ...


T = TypeVar("T", bound=BatchItem)


@dataclass(eq=False)
class _Queued(Generic[T]):
    item: T
    arrived: float


class Reservation(Generic[T]):
    """Queue slots held for one request between admission and submission of its items."""

    def __init__(self, batcher: DynamicBatcher[T], slots: int) -> None:
        self._batcher = batcher
        self._slots = slots

    def submit(self, items: Sequence[T]) -> None:
        """Queue the items in the reserved slots; slots left over are given back."""
        if len(items) > self._slots:
            raise ValueError(f"{len(items)} items submitted for {self._slots} reserved slots")
        self._batcher._enqueue(items)
        self._batcher._release(self._slots - len(items))
        self._slots = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._batcher._release(self._slots)
        self._slots = 0


class DynamicBatcher(Generic[T]):
    """Forms batches from queued items and hands each to `execute`, one at a time."""

    def __init__(
        self,
        limits: BatchLimits,
        execute: Callable[[list[T]], Awaitable[None]],
        *,
        on_batch: Callable[[int], None] = lambda size: None,
        on_depth: Callable[[int], None] = lambda depth: None,
        room: Callable[[], int] | None = None,
    ) -> None:
        self.limits = limits
        self._execute = execute
        self._on_batch = on_batch
        self._on_depth = on_depth
        self._room = room
        """How many items the executor's running batch can take now (continuous batching)."""
        self._queue: deque[_Queued[T]] = deque()
        self._waiting = 0
        self._arrived = asyncio.Event()

    @property
    def queued(self) -> int:
        """Items submitted and waiting to join a batch."""
        return len(self._queue)

    @property
    def waiting(self) -> int:
        """Items admitted and not yet running (reserved or queued)."""
        return self._waiting

    def reserve(self, count: int) -> Reservation[T]:
        """Hold `count` slots, or raise `QueueFull` at once when they are not free."""
        if self._waiting + count > self.limits.max_queue:
            raise QueueFull(count, self._waiting, self.limits.max_queue)
        self._set_waiting(self._waiting + count)
        return Reservation(self, count)

    async def run(self) -> None:
        """Form and execute batches until cancelled; fails whatever is left when cancelled."""
        try:
            while True:
                batch = await self._collect()
                if batch or self._running():
                    await self._run_batch(batch)
        finally:
            self._fail_queued(RuntimeError("the server is shutting down"))

    def _running(self) -> bool:
        """The executor holds a running batch that must go on (continuous batching)."""
        return self._room is not None and self._room() < self.limits.max_batch

    async def _run_batch(self, batch: list[T]) -> None:
        if batch:
            self._on_batch(len(batch))
        try:
            await self._execute(batch)
        except asyncio.CancelledError:
            for item in batch:
                item.fail(RuntimeError("the server is shutting down"))
            raise
        except Exception as exc:
            log.exception("a batch of %d items failed", len(batch))
            for item in batch:
                item.fail(exc)

    async def _collect(self) -> list[T]:
        """The oldest live item plus whatever joins before its wait runs out, up to max_batch."""
        batch: list[T] = []
        limit = self.limits.max_batch if self._room is None else self._room()
        # A running batch must not stall while stragglers are awaited: take what is here.
        deadline = time.monotonic() if self._running() else None
        while len(batch) < limit:
            if not self._queue:
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout)
                except TimeoutError:
                    break
                continue
            queued = self._queue.popleft()
            self._set_waiting(self._waiting - 1)
            if queued.item.abandoned():
                continue
            batch.append(queued.item)
            if deadline is None:
                deadline = queued.arrived + self.limits.max_wait_s
        return batch

    def _enqueue(self, items: Sequence[T]) -> None:
        now = time.monotonic()
        self._queue.extend(_Queued(item, now) for item in items)
        self._arrived.set()

    def _release(self, count: int) -> None:
        if count:
            self._set_waiting(self._waiting - count)

    def _set_waiting(self, waiting: int) -> None:
        self._waiting = waiting
        self._on_depth(waiting)

    def fail_queued(self, exc: BaseException) -> None:
        """Fail every item still waiting in the queue."""
        self._fail_queued(exc)

    def _fail_queued(self, exc: BaseException) -> None:
        while self._queue:
            self._queue.popleft().item.fail(exc)
            self._set_waiting(self._waiting - 1)
