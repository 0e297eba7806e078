"""Profiles a model's LoRA adapters: resident bytes, cold-load time, the latency overhead of
a batch mixing adapters and the base, and each adapter's accuracy delta at every base
precision against the same adapter on the fp32 base."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from tierwise_operator.api import (
    AdapterAccuracy,
    AdapterProfile,
    Precision,
    Task,
    TierKind,
)

from ..adapters.attach import attach_adapters
from ..adapters.manager import AdapterManager, AdapterSpec
from ..engine import Engine, SamplingParams
from .accuracy import TokenReference, embedding_accuracy, embeddings, generation_accuracy
from .accuracy import token_reference as _token_reference
from .peak import release_memory
from .progress import Progress
from .timing import TimingPolicy, measure

Loader = Callable[..., Engine]
MIXED_BATCH = 8
"""Rows of the mixed-batch timing: adapters and the base in turn."""


class WithAdapter:
    """An engine whose every row runs through one adapter: the accuracy measures' view."""

    def __init__(self, engine: Any, adapter: str) -> None:
        self.engine, self.adapter, self.info = engine, adapter, engine.info

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        ids: list[list[int]] = self.engine.tokenize(texts)
        return ids

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        out: torch.Tensor = self.engine.embed(texts, [self.adapter] * len(texts))
        return out

    def logits(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        out: torch.Tensor = self.engine.logits(ids, [self.adapter] * len(ids))
        return out


def profile_adapters(
    adapters: dict[str, str],
    model_uri: str,
    *,
    texts: Sequence[str],
    precisions: Sequence[Precision],
    device: str,
    loader: Loader,
    timing: TimingPolicy,
    progress: Progress | None = None,
) -> list[AdapterProfile]:
    """One AdapterProfile per adapter; a bad adapter is recorded with its error."""
    if not adapters:
        return []
    specs = [AdapterSpec(name, uri) for name, uri in adapters.items()]
    reference = loader(model_uri, Precision.FP32, device="cpu")
    manager = attach_adapters(reference, specs, capacity=len(specs))
    listed = {entry["name"]: entry for entry in manager.listing()}
    good = [s.name for s in specs if listed[s.name]["state"] != "failed"]
    loads = {name: _cold_load(manager, name) for name in good}
    refs = {name: _reference(WithAdapter(reference, name), texts) for name in good}
    overhead = _mixed_overhead(reference, good, texts, timing) if good else None
    del reference, manager
    release_memory()
    tier = TierKind.GPU if device.startswith("cuda") else TierKind.CPU
    deltas: dict[str, list[AdapterAccuracy]] = {name: [] for name in good}
    for precision in precisions:
        if progress is not None:
            progress.start(f"adapters at {precision}/{tier}")
        _measure_at(
            precision, tier, model_uri=model_uri, specs=specs, good=good, refs=refs,
            texts=texts, deltas=deltas, loader=loader, device=device,
        )  # fmt: skip
        if progress is not None:
            progress.done("measured")
    return [
        AdapterProfile(
            name=s.name, uri=s.source, error=listed[s.name]["error"],
            resident_bytes=listed[s.name]["resident_bytes"], rank=listed[s.name]["rank"],
            load_ms=loads.get(s.name), mixed_batch_overhead=overhead,
            accuracy=deltas.get(s.name, []),
        )
        for s in specs
    ]  # fmt: skip


def _measure_at(
    precision: Precision,
    tier: TierKind,
    *,
    model_uri: str,
    specs: list[AdapterSpec],
    good: list[str],
    refs: dict[str, Any],
    texts: Sequence[str],
    deltas: dict[str, list[AdapterAccuracy]],
    loader: Loader,
    device: str,
) -> None:
    try:
        engine = loader(model_uri, precision, device=device)
        attach_adapters(engine, specs, capacity=len(specs))
    except Exception:  # the candidate loop records why this precision fails
        return
    for name in good:
        measured = _accuracy(WithAdapter(engine, name), refs[name], texts)
        deltas[name].append(AdapterAccuracy(precision=precision, tier=tier, delta=measured))
    del engine
    release_memory()


def _cold_load(manager: AdapterManager, name: str) -> float:
    started = time.perf_counter()
    manager.release(manager.acquire([name]))
    return (time.perf_counter() - started) * 1000


def _reference(engine: WithAdapter, texts: Sequence[str]) -> Any:
    if engine.info.task is Task.TEXT_EMBEDDING:
        return embeddings(engine, texts)
    return _token_reference(engine, texts)  # type: ignore[arg-type]


def _accuracy(engine: WithAdapter, reference: Any, texts: Sequence[str]) -> float:
    if isinstance(reference, TokenReference):
        return generation_accuracy(reference, engine, texts).delta  # type: ignore[arg-type]
    return embedding_accuracy(reference, embeddings(engine, texts)).delta


def _mixed_overhead(
    engine: Any, names: list[str], texts: Sequence[str], timing: TimingPolicy
) -> float:
    """p50 of a batch mixing every adapter and the base over p50 of it on the base, - 1."""
    rows = [*names, None]
    mix = [rows[i % len(rows)] for i in range(MIXED_BATCH)]
    batch = [texts[i % len(texts)] for i in range(MIXED_BATCH)]
    if engine.info.task is Task.TEXT_EMBEDDING:
        base = measure(lambda: engine.embed(batch), MIXED_BATCH, timing, lambda: None)
        mixed = measure(lambda: engine.embed(batch, mix), MIXED_BATCH, timing, lambda: None)
    else:
        prompts = [ids[:64] for ids in engine.tokenize(batch)]

        def decode(adapters: list[str | None]) -> object:
            params = [SamplingParams(max_tokens=8, temperature=0.0, adapter=a) for a in adapters]
            return sum(1 for _ in engine.generate(prompts, params))

        base = measure(lambda: decode([None] * MIXED_BATCH), MIXED_BATCH, timing, lambda: None)
        mixed = measure(lambda: decode(mix), MIXED_BATCH, timing, lambda: None)
    return mixed.p50_ms / base.p50_ms - 1.0
