"""Embeddings: texts of concurrent requests are checked, batched together and embedded."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .adapters.manager import prefetch_adapter
from .batching import BatchLimits, DynamicBatcher, EngineWorker
from .engine import EmbeddingEngine
from .input_checks import check_lengths

_WARM_UP = "tierwise warms up the model with this sentence."


@dataclass(frozen=True)
class Embeddings:
    """One L2-normalised float32 vector per text, in input order."""

    vectors: list[torch.Tensor]
    prompt_tokens: int


@dataclass(eq=False)
class _Text:
    text: str
    future: asyncio.Future[torch.Tensor]
    adapter: str | None = None

    def abandoned(self) -> bool:
        return self.future.done()

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class EmbeddingService:
    """Embeds texts for many concurrent requests through one batcher and the engine thread."""

    def __init__(
        self,
        engine: EmbeddingEngine,
        worker: EngineWorker,
        limits: BatchLimits,
        *,
        on_batch: Callable[[int], None] = lambda size: None,
        on_depth: Callable[[int], None] = lambda depth: None,
    ) -> None:
        self._engine = engine
        self._worker = worker
        self.batcher = DynamicBatcher[_Text](
            limits, self._execute, on_batch=on_batch, on_depth=on_depth
        )

    async def embed(self, texts: Sequence[str], adapter: str | None = None) -> Embeddings:
        """Vectors of `texts` (through LoRA `adapter` if given); raises QueueFull when the
        queue is full, InputTooLong, AdapterError."""
        loop = asyncio.get_running_loop()
        with self.batcher.reserve(len(texts)) as slots:
            ids = await self._worker.call(self._engine.tokenize, texts)
            check_lengths(ids, self._engine.info.max_tokens)
            if adapter is not None:  # a cold adapter loads now, and fails here
                await self._worker.call(prefetch_adapter, self._engine, adapter)
            items = [_Text(text, loop.create_future(), adapter) for text in texts]
            slots.submit(items)
        vectors = await asyncio.gather(*(item.future for item in items))
        return Embeddings(vectors=list(vectors), prompt_tokens=sum(map(len, ids)))

    async def _execute(self, batch: list[_Text]) -> None:
        texts = [item.text for item in batch]
        adapters = [item.adapter for item in batch]
        if any(adapters):
            embed = functools.partial(self._engine.embed, adapters=adapters)  # type: ignore[call-arg]
            vectors = await self._worker.call(embed, texts)
        else:
            vectors = await self._worker.call(self._engine.embed, texts)
        for item, vector in zip(batch, vectors, strict=True):
            if not item.future.done():
                item.future.set_result(vector)

    def warm_up(self) -> None:
        """One pass through the model on the engine thread, before serving."""
        self._engine.tokenize([_WARM_UP])
        self._engine.embed([_WARM_UP])
