"""Measure every candidate of a model against its fp32 reference and assemble the ModelProfile."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from tierwise_operator.api import (
    PRIMARY_VARIANT,
    AccuracyMeasure,
    CandidateProfile,
    Int4Calibration,
    LatencyPoint,
    ModelProfile,
    Precision,
    ProfiledModel,
    Task,
    TierKind,
)

from ..engine import EmbeddingEngine, Engine, GenerationEngine, SamplingParams
from .accuracy import (
    TokenReference,
    embedding_accuracy,
    embeddings,
    generation_accuracy,
    token_reference,
)
from .adapters import profile_adapters
from .evalset import EvalSet
from .machine import machine_info
from .peak import peak_since_reset, release_memory, reset_peak
from .progress import Progress
from .timing import TimingPolicy, measure

Loader = Callable[..., Engine]
"""`load_engine(uri, precision, device=, offload_dir=, group_size=, name=, calibration=)`."""
Reference = torch.Tensor | TokenReference


@dataclass(frozen=True)
class ProfileRequest:
    model_uri: str
    variants: dict[str, str] = field(default_factory=dict)
    """Variant name -> checkpoint URI; measured against the primary's fp32 reference."""
    device: str = "cpu"
    precisions: tuple[Precision, ...] = tuple(Precision)
    tiers: tuple[TierKind, ...] | None = None
    """Default: cpu and offload on a cpu device, gpu on cuda."""
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    timing: TimingPolicy = field(default_factory=TimingPolicy)
    offload_dir: Path | None = None
    group_size: int | None = None
    adapters: dict[str, str] = field(default_factory=dict)
    """LoRA adapter name -> folder URI, measured on the primary checkpoint."""
    prompt_tokens: int = 64
    """Decoders: prompt length of the latency runs."""
    gen_tokens: int = 16
    """Decoders: tokens generated per request in the latency runs."""

    @property
    def measured_tiers(self) -> tuple[TierKind, ...]:
        if self.tiers is not None:
            return self.tiers
        if self.device.startswith("cuda"):
            return (TierKind.GPU,)
        return (TierKind.CPU, TierKind.OFFLOAD) if self.offload_dir else (TierKind.CPU,)


@dataclass(frozen=True)
class Candidate:
    variant: str
    uri: str
    precision: Precision
    tier: TierKind

    @property
    def label(self) -> str:
        name = f"{self.precision}/{self.tier}"
        return name if self.variant == PRIMARY_VARIANT else f"{self.variant}:{name}"


def candidates(request: ProfileRequest) -> list[Candidate]:
    checkpoints = {PRIMARY_VARIANT: request.model_uri, **request.variants}
    return [
        Candidate(variant, uri, precision, tier)
        for variant, uri in checkpoints.items()
        for precision in request.precisions
        for tier in request.measured_tiers
    ]


def profile_model(
    request: ProfileRequest,
    eval_set: EvalSet,
    loader: Loader,
    progress: Progress | None = None,
    digest: str = "",
) -> ModelProfile:
    """Load the fp32 reference, then each candidate in turn; a failing candidate is recorded."""
    torch.manual_seed(0)
    todo = candidates(request)
    progress = progress or Progress(len(todo))
    reference_engine = loader(request.model_uri, Precision.FP32, device="cpu")
    info = reference_engine.info
    reference = _reference(reference_engine, eval_set.texts)
    del reference_engine
    release_memory()
    measured = [
        _measure_candidate(
            cand, request, eval_set=eval_set, reference=reference, loader=loader, progress=progress
        )
        for cand in todo
    ]
    adapters = profile_adapters(
        request.adapters, request.model_uri, texts=eval_set.texts,
        precisions=request.precisions, device=request.device, loader=loader,
        timing=request.timing, progress=progress,
    )  # fmt: skip
    return ModelProfile(
        model=ProfiledModel(
            uri=request.model_uri,
            digest=digest,
            task=info.task,
            architecture=info.architecture,
            parameters=info.parameters,
            max_tokens=info.max_tokens,
        ),
        eval_set=eval_set.info,
        machine=machine_info(request.device),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        candidates=measured,
        adapters=adapters,
    )


def _reference(engine: Engine, texts: Sequence[str]) -> Reference:
    if isinstance(engine, EmbeddingEngine) and engine.info.task is Task.TEXT_EMBEDDING:
        return embeddings(engine, texts)
    if isinstance(engine, GenerationEngine):
        return token_reference(engine, texts)
    raise TypeError(f"no accuracy measure for a {engine.info.task} engine")


def _accuracy(engine: Engine, reference: Reference, texts: Sequence[str]) -> AccuracyMeasure:
    if isinstance(reference, TokenReference):
        if not isinstance(engine, GenerationEngine):
            raise TypeError("a text-generation reference needs a generation engine")
        return generation_accuracy(reference, engine, texts)
    if not isinstance(engine, EmbeddingEngine):
        raise TypeError("an embedding reference needs an embedding engine")
    return embedding_accuracy(reference, embeddings(engine, texts))


def _cycle(items: Sequence[Any], n: int) -> list[Any]:
    return [items[i % len(items)] for i in range(n)]


def _workload(
    engine: Engine, texts: Sequence[str], batch: int, request: ProfileRequest
) -> Callable[[], object]:
    """One request batch as the server would run it."""
    if isinstance(engine, GenerationEngine) and engine.info.task is Task.TEXT_GENERATION:
        prompts = [ids[: request.prompt_tokens] for ids in engine.tokenize(_cycle(texts, batch))]
        params = [SamplingParams(max_tokens=request.gen_tokens, temperature=0.0)] * batch

        def generate() -> object:
            steps: Iterator[list[int | None]] = engine.generate(prompts, params)
            return sum(1 for _ in steps)

        return generate
    if not isinstance(engine, EmbeddingEngine):
        raise TypeError(f"cannot time a {engine.info.task} engine")
    batch_texts = _cycle(texts, batch)
    return lambda: engine.embed(batch_texts)


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _calibration(
    engine: Engine,
    cand: Candidate,
    *,
    request: ProfileRequest,
    reference: Reference,
    eval_set: EvalSet,
    loader: Loader,
    progress: Progress,
) -> Int4Calibration | None:
    """How int4 codes were fitted; for GPTQ codes, also what round-to-nearest keeps at the same
    bytes (the same kernels, so only its accuracy is measured)."""
    method = engine.info.calibration
    if method is None:
        return None
    if method != "gptq":
        return Int4Calibration(method="rtn")
    progress.step("measuring round-to-nearest int4 beside it")
    device = request.device if cand.tier is TierKind.GPU else "cpu"
    rtn = loader(
        cand.uri, cand.precision, device=device, group_size=request.group_size, calibration="rtn"
    )
    try:
        return Int4Calibration(
            method="gptq", rtn_accuracy=_accuracy(rtn, reference, eval_set.texts)
        )
    finally:
        del rtn
        release_memory()


def _measure_candidate(
    cand: Candidate,
    request: ProfileRequest,
    *,
    eval_set: EvalSet,
    reference: Reference,
    loader: Loader,
    progress: Progress,
) -> CandidateProfile:
    device = request.device if cand.tier is TierKind.GPU else "cpu"
    offload = (
        request.offload_dir / cand.label.replace("/", "-").replace(":", "-")
        if (cand.tier is TierKind.OFFLOAD and request.offload_dir)
        else None
    )
    progress.start(cand.label)
    reset_peak(device)
    started = time.perf_counter()
    try:
        engine = loader(
            cand.uri,
            cand.precision,
            device=device,
            offload_dir=offload,
            group_size=request.group_size,
        )
        load_seconds = time.perf_counter() - started
        progress.step("measuring accuracy")
        accuracy = _accuracy(engine, reference, eval_set.texts)
        calibration = _calibration(
            engine, cand, request=request, reference=reference, eval_set=eval_set,
            loader=loader, progress=progress,
        )  # fmt: skip
        latency: list[LatencyPoint] = []
        for batch in request.batch_sizes:
            progress.step(f"timing batch {batch}")
            run = _workload(engine, eval_set.texts, batch, request)
            latency.append(measure(run, batch, request.timing, _sync(device)))
        result = CandidateProfile(
            variant=cand.variant,
            precision=cand.precision,
            tier=cand.tier,
            weight_bytes=engine.info.weight_bytes,
            load_seconds=load_seconds,
            peak_memory_bytes=peak_since_reset(device),
            kv_cache_bytes_per_token=engine.info.kv_cache_bytes_per_token,
            latency=latency,
            accuracy=accuracy,
            calibration=calibration,
        )
        del engine
    except Exception as exc:  # one bad candidate must not sink the profile
        progress.done(f"FAILED: {exc}")
        release_memory()
        return CandidateProfile(
            variant=cand.variant,
            precision=cand.precision,
            tier=cand.tier,
            weight_bytes=0,
            peak_memory_bytes=0,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
    release_memory()
    first, last = result.latency[0], result.latency[-1]
    delta = result.accuracy.delta if result.accuracy else 0.0
    progress.done(
        f"delta {delta:.3%}  {result.weight_bytes / 2**20:.1f} MiB  "
        f"p99@{first.batch} {first.p99_ms:.1f} ms  {last.throughput:.0f}/s@{last.batch}"
    )
    return result
