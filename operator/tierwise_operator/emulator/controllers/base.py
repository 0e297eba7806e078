"""A controller: store events become keys in a de-duplicating work queue; a worker reconciles.

Like client-go's workqueue, a key waits at most once in the queue however
many events name it, and a failed reconcile is retried with a growing delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import Any

from ..apiserver import ApiServer
from ..errors import ApiError
from ..storage import Event

logger = logging.getLogger("tierwise.emulator")


class Controller:
    """Subclasses say which keys an event concerns (`wants`) and how to `reconcile` one."""

    name = "controller"
    retry_delay = 0.05
    max_retry_delay = 2.0

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._pending: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}

    def wants(self, event: Event) -> list[Any]:
        raise NotImplementedError

    async def reconcile(self, key: Any) -> None:
        raise NotImplementedError

    def resync(self) -> list[Any]:
        """Keys to reconcile at start, for objects that existed before the controller."""
        return []

    def start(self) -> None:
        self.api.store.listen(self._on_event)
        for key in self.resync():
            self.enqueue(key)
        self._task = asyncio.create_task(self._work(), name=f"emulator-{self.name}")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def enqueue(self, key: Hashable, delay: float = 0.0) -> None:
        if delay > 0:
            if key in self._timers:
                self._timers[key].cancel()
            self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)
            return
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    async def idle(self) -> None:
        """Wait until the queue is empty (tests use it to let the controller settle)."""
        while self._pending:
            await asyncio.sleep(0.01)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    def _on_event(self, event: Event) -> None:
        for key in self.wants(event):
            self.enqueue(key)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._retry(key, exc)

    def _retry(self, key: Hashable, exc: Exception) -> None:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(self.retry_delay * 2 ** (failures - 1), self.max_retry_delay)
        if not (isinstance(exc, ApiError) and exc.status == 409):  # conflicts are routine
            logger.warning(
                "%s: reconciling %s failed, retrying in %.2fs: %r", self.name, key, delay, exc
            )
        self.enqueue(key, delay)
