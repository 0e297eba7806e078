"""Telling the operator a model at zero replicas has demand: a timestamp annotation.

The gateway merge-patches `tierwise.dev/demand-at` on the InferenceModel; the
operator sees an update event at once and plans at least one replica while the
timestamp is recent (`planner.wake`). Signals are rate-limited per model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ..planner.wake import demand_patch
from .endpoints import ModelKey, Route
from .metrics import GatewayMetrics

log = logging.getLogger(__name__)

Patch = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""Merge-patch the InferenceModel (namespace, name) with a body."""


class DemandSignal(Protocol):
    def demand(self, route: Route) -> None: ...


class NoSignal:
    """For a gateway without the Kubernetes API (tests): demand goes nowhere."""

    def demand(self, route: Route) -> None:
        return None


class AnnotationDemand:
    """Patches the demand annotation in the background, at most once per `interval_s`."""

    def __init__(
        self,
        patch: Patch,
        interval_s: float,
        metrics: GatewayMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.patch = patch
        self.interval_s = interval_s
        self.metrics = metrics
        self.clock = clock
        self._last: dict[ModelKey, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def demand(self, route: Route) -> None:
        now = self.clock()
        last = self._last.get(route.key)
        if last is not None and now - last < self.interval_s:
            return
        self._last[route.key] = now
        task = asyncio.create_task(self._send(route.namespace, route.name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, namespace: str, name: str) -> None:
        try:
            await self.patch(namespace, name, demand_patch(datetime.now(UTC)))
        except Exception as exc:  # the next request signals again
            self._last.pop((namespace, name), None)
            log.warning("demand signal for %s/%s failed: %s", namespace, name, exc)
            return
        self.metrics.demand_signals.labels(namespace, name).inc()
        log.info("demand signalled for %s/%s", namespace, name)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
