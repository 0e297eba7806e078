"""One request from admission to answer: bound it, hold it for a replica, retry where safe.

A request is admitted while its model has room (`max_pending`); it goes to
the least-loaded ready replica; an attempt that never reached an engine goes
to another replica, and when none is left the request waits (at most
`wait_s` from its arrival, with at most `max_queue` others) for the ready
set to change, asking the operator to wake the model when it has no replica
at all. Past the wait, 503 with Retry-After: a request never hangs.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from .balancing import pick
from .config import GatewaySettings
from .endpoints import ModelKey, Route
from .errors import openai_error
from .metrics import GatewayMetrics
from .proxying import Attempt, Verdict, attempt
from .waking import DemandSignal

#: The first pause before trying a replica again that turned the request away.
FIRST_PAUSE_S = 0.05
LONGEST_PAUSE_S = 1.0


@dataclass
class Forward:
    """What to send: the path, the (possibly rewritten) body and the headers."""

    path: str
    body: bytes
    headers: dict[str, str]


class Dispatcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        signal: DemandSignal,
    ) -> None:
        self.session = session
        self.settings = settings
        self.metrics = metrics
        self.signal = signal
        self.pending: Counter[ModelKey] = Counter()
        self.held: Counter[ModelKey] = Counter()

    async def serve(
        self, route: Route, forward: Forward, request: web.Request
    ) -> web.StreamResponse:
        if self.pending[route.key] >= self.settings.max_pending:
            return self._reject(route, "overloaded", f"{route.label} has too many requests")
        arrived = time.monotonic()
        series = self.metrics.model(route.namespace, route.name)
        self.pending[route.key] += 1
        series.in_flight.inc()
        try:
            return await self._route(route, forward, request, arrived)
        finally:
            self.pending[route.key] -= 1
            series.in_flight.dec()
            series.duration.observe(time.monotonic() - arrived)

    async def _route(
        self, route: Route, forward: Forward, request: web.Request, arrived: float
    ) -> web.StreamResponse:
        deadline = arrived + self.settings.wait_s
        tried: set[str] = set()
        busy: Attempt | None = None
        pause = FIRST_PAUSE_S
        holding = False
        try:
            while True:
                endpoint = pick(route.endpoints.values(), tried)
                if endpoint is None:
                    if busy is not None and busy.response is not None:
                        # Every replica is full: the client backs off, as their 503 says.
                        self.metrics.errors.labels(route.namespace, route.name, "all_full").inc()
                        return busy.response
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return self._timed_out(route)
                    if not holding:
                        if self.held[route.key] >= self.settings.max_queue:
                            return self._reject(
                                route, "queue_full", f"too many requests wait for {route.label}"
                            )
                        holding = True
                        self.held[route.key] += 1
                        self.metrics.model(route.namespace, route.name).held.inc()
                    if not route.endpoints:
                        self.signal.demand(route)
                        await route.changed(left)
                    elif not await route.changed(min(left, pause)):
                        # The same replicas after a pause: they may take it now.
                        pause = min(pause * 2, LONGEST_PAUSE_S)
                        tried.clear()
                    continue
                sent = time.monotonic()
                endpoint.outstanding += 1
                try:
                    result = await attempt(
                        self.session, endpoint.url + forward.path, forward.body,
                        forward.headers, request,
                    )  # fmt: skip
                finally:
                    endpoint.outstanding -= 1
                if result.verdict is Verdict.DONE:
                    return self._done(route, result, sent - arrived)
                tried.add(endpoint.url)
                self.metrics.retries.labels(route.namespace, route.name, result.reason).inc()
                if result.verdict is Verdict.BUSY:
                    busy = result
        finally:
            if holding:
                self.held[route.key] -= 1
                self.metrics.model(route.namespace, route.name).held.dec()

    def _done(self, route: Route, result: Attempt, queued_s: float) -> web.StreamResponse:
        self.metrics.queue_seconds.labels(route.namespace, route.name).observe(queued_s)
        if result.broken:
            self.metrics.errors.labels(route.namespace, route.name, result.reason).inc()
        elif result.status >= 500:
            self.metrics.errors.labels(
                route.namespace, route.name, f"upstream_{result.status}"
            ).inc()
        assert result.response is not None
        return result.response

    def _timed_out(self, route: Route) -> web.Response:
        waited = self.settings.wait_s
        state = "being woken" if not route.endpoints else "busy or moving"
        return self._reject(
            route,
            "no_ready_replica",
            f"no replica of {route.label} took the request within {waited:g}s ({state}); retry",
        )

    def _reject(self, route: Route, code: str, message: str) -> web.Response:
        self.metrics.errors.labels(route.namespace, route.name, code).inc()
        return openai_error(503, message, code, retry_after=self.settings.retry_after_s)
