"""A server's life: load the engine, warm it up, serve, drain on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any

from .adapters.manager import AdapterManager
from .batching import BatchLimits, EngineWorker
from .completion_service import CompletionService
from .embedding_service import EmbeddingService
from .engine import Engine, EngineInfo, GenerationEngine
from .errors import ShuttingDown
from .metrics import RuntimeMetrics

log = logging.getLogger(__name__)

EngineLoader = Callable[[], Engine]


class Phase(StrEnum):
    LOADING = "loading"
    WARMING = "warming"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


class Lifecycle:
    """Owns the engine, its worker thread and services, and the phase /readyz reports."""

    def __init__(
        self, limits: BatchLimits, metrics: RuntimeMetrics, *, engine_call_limit_s: float = 60.0
    ) -> None:
        self.limits = limits
        self.metrics = metrics
        self.engine_call_limit_s = engine_call_limit_s
        self.stalled: str | None = None
        """Why /readyz fails while the phase is ready: an engine call outlived its limit."""
        self._overrun: int | None = None
        self.worker = EngineWorker()
        self.phase = Phase.LOADING
        self.info: EngineInfo | None = None
        self.embeddings: EmbeddingService | None = None
        self.completions: CompletionService | None = None
        self.adapters: AdapterManager | None = None
        """The engine's LoRA adapters, when it has any attached."""
        self.created = int(time.time())
        self.stop_requested = asyncio.Event()
        """Set by SIGTERM/SIGINT or a failed load: the serve loop then drains and exits."""
        self.exit_code = 0
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        """Serving, and no engine call over its limit."""
        return self.phase is Phase.READY and self.stalled is None

    async def watch(self, period_s: float) -> None:
        """The watchdog: every `period_s`, compare the running engine call with its limit."""
        while True:
            await asyncio.sleep(period_s)
            self.check_engine()

    def check_engine(self) -> None:
        """Turn not-ready (log, metric) while one engine call runs past the limit; ready
        again once it ends. Loading and warm-up have no limit: they are not ready anyway."""
        call = self.worker.running()
        if call is not None and call.seconds > self.engine_call_limit_s:
            if self.phase is Phase.READY and self._overrun != call.number:
                self._overrun = call.number
                self.stalled = (
                    f"the engine call {call.name} has run {call.seconds:.1f} s, over its "
                    f"limit of {self.engine_call_limit_s:g} s"
                )
                log.error("not ready: %s", self.stalled)
                self.metrics.engine_overruns.inc()
                self.metrics.engine_stalled.set(1)
                self._set_phase(self.phase)
            return
        if self.stalled is not None:
            log.warning("ready again: the engine call that overran has ended")
            self.stalled = None
            self.metrics.engine_stalled.set(0)
            self._set_phase(self.phase)

    async def start(self, load: EngineLoader) -> None:
        """Load and warm up on the engine thread, then serve; a failure stops the server."""
        try:
            started = time.monotonic()
            engine = await self.worker.call(load)
            log.info("loaded %s in %.1f s", _describe(engine.info), time.monotonic() - started)
            self._advance(Phase.LOADING, Phase.WARMING)
            self._build_services(engine)
            await self.worker.call(self._warm_up)
        except Exception as exc:
            log.error("error: cannot serve the model: %s: %s", type(exc).__name__, exc)
            log.debug("load failure", exc_info=True)
            self._set_phase(Phase.FAILED)
            self.exit_code = 1
            self.stop_requested.set()
            return
        self.info = engine.info
        self.adapters = getattr(engine, "adapters", None)
        self.metrics.engine_loaded(engine.info)
        if self._advance(Phase.WARMING, Phase.READY):
            log.info("ready: serving %s", engine.info.model_name)

    def _build_services(self, engine: Engine) -> None:
        on_depth = self.metrics.queue_depth.set
        if isinstance(engine, GenerationEngine):
            route = self.metrics.batch_size.labels(route="/v1/completions")
            self.completions = CompletionService(
                engine, self.worker, self.limits, on_batch=route.observe, on_depth=on_depth,
                on_running=self.metrics.running.set,
            )  # fmt: skip
            self._spawn(self.completions.batcher.run())
        else:
            route = self.metrics.batch_size.labels(route="/v1/embeddings")
            self.embeddings = EmbeddingService(
                engine, self.worker, self.limits, on_batch=route.observe, on_depth=on_depth
            )
            self._spawn(self.embeddings.batcher.run())

    def _warm_up(self) -> None:
        service = self.completions or self.embeddings
        if service is not None:
            service.warm_up()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(coro))

    # -- requests in flight and draining --

    def request_started(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    @property
    def inflight(self) -> int:
        return self._inflight

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new work, wait for requests in flight; False when some outlived the timeout."""
        if self.phase is not Phase.FAILED:
            self._set_phase(Phase.DRAINING)
        log.info("draining: %d requests in flight", self._inflight)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            log.warning("drain timed out after %.0f s, %d in flight", timeout_s, self._inflight)
            return False
        return True

    async def cut(self, grace_s: float) -> None:
        """After a drain ran out of time: end every completion still decoding with an error
        (streams send it as an SSE event), and give their answers `grace_s` to leave."""
        if self.completions is not None:
            self.completions.abort(ShuttingDown("the server shut down before this answer ended"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_s)

    async def close(self) -> None:
        """Stop the batchers and the engine thread (without waiting for an engine call)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.worker.close()

    def _advance(self, current: Phase, to: Phase) -> bool:
        """Move on only from `current`: a drain that began meanwhile wins."""
        if self.phase is not current:
            return False
        self._set_phase(to)
        return True

    def _set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self.metrics.ready.set(1 if self.ready else 0)


def _describe(info: EngineInfo) -> str:
    mib = info.weight_bytes / 2**20
    where = f"{info.precision}, {info.device}, {info.tier}"
    return f"{info.model_name} ({where}, {mib:.1f} MiB of weights)"
